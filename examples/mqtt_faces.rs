// SPDX-License-Identifier: MPL-2.0
//! Subscribes to what `faceposepublish` sends and prints each frame's faces, one line a message:
//! topic, source, pts and per face its id, box (pixels) and yaw / pitch / roll (degrees).
//!
//! ```text
//! cargo run --example mqtt_faces -- --address 127.0.0.1:1883 --topic 'facepose/#'
//! cargo run --example mqtt_faces -- --address 127.0.0.1:1883 --count 10
//! ```
//!
//! It reconnects when the broker goes away (rumqttc, a persistent session at QoS 1: the broker
//! keeps what arrives meanwhile). `tests/publish.rs` uses [`describe`] and [`subscribe`].

use std::time::{Duration, Instant};

use rumqttc::{Client, ConnectionError, Event, MqttOptions, Packet, QoS, RecvTimeoutError};

/// One message as a line of text, or why it is not a faceposepublish message.
pub fn describe(topic: &str, payload: &[u8]) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let source = v["source"].as_str().ok_or("no source")?;
    let pts = match v["pts"].as_u64() {
        Some(ns) => format!("{:.3}s", ns as f64 * 1e-9),
        None => "none".into(),
    };
    let faces = v["faces"].as_array().ok_or("no faces")?;
    let mut line = format!("{topic} {source} pts={pts} faces={}", faces.len());
    for f in faces {
        let b: Vec<f64> = f["box"]
            .as_array()
            .map(|b| b.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        let angle = |k: &str| f[k].as_f64().unwrap_or(f64::NAN);
        line.push_str(&format!(
            " | #{} box=[{}] yaw={:.1} pitch={:.1} roll={:.1}",
            f["id"],
            b.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(","),
            angle("yaw"),
            angle("pitch"),
            angle("roll")
        ));
    }
    Ok(line)
}

/// Subscribes to `filter` at `address` and calls `each` with every message (topic, payload)
/// until it returns false or `until` passes; rumqttc reconnects while the broker is away.
pub fn subscribe(
    address: &str,
    filter: &str,
    client_id: &str,
    until: Option<Instant>,
    mut each: impl FnMut(&str, &[u8]) -> bool,
) -> Result<(), String> {
    let (host, port) = gstfacepose::mqtt::publisher::split_address(address)?;
    let mut options = MqttOptions::new(client_id, host, port);
    // A persistent session at QoS 1; messages as large as MQTT allows (many faces).
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 28, 1 << 28);
    let (client, mut connection) = Client::new(options, 64);
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .map_err(|e| format!("{address}: {e}"))?;
    let over = || until.is_some_and(|t| Instant::now() >= t);
    let mut reported = false;
    while !over() {
        match connection.recv_timeout(Duration::from_millis(250)) {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                reported = false;
                if !each(&p.topic, &p.payload) {
                    break;
                }
            }
            Ok(Ok(Event::Incoming(Packet::ConnAck(c)))) => {
                reported = false;
                // A broker that lost the session (restarted without persistence) forgot the
                // subscription too.
                if !c.session_present {
                    let _ = client.try_subscribe(filter, QoS::AtLeastOnce);
                }
            }
            Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Err(ConnectionError::ConnectionRefused(code))) => {
                return Err(format!("{address} refused the connection: {code:?}"));
            }
            Ok(Err(e)) => {
                if !reported {
                    eprintln!("{address}: {e}; reconnecting");
                    reported = true;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = client.try_disconnect();
    Ok(())
}

#[allow(dead_code)]
fn main() {
    let mut address = "127.0.0.1:1883".to_string();
    let mut topic = "facepose/#".to_string();
    let mut count: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--address" => address = value("--address"),
            "--topic" => topic = value("--topic"),
            "--count" => {
                count = Some(value("--count").parse().unwrap_or_else(|_| {
                    eprintln!("--count needs a number");
                    std::process::exit(2)
                }))
            }
            _ => {
                eprintln!("usage: mqtt_faces [--address HOST:PORT] [--topic FILTER] [--count N]");
                std::process::exit(2)
            }
        }
    }
    let client_id = format!("facepose-subscriber-{}", std::process::id());
    let mut seen = 0u64;
    let result = subscribe(&address, &topic, &client_id, None, |t, payload| {
        match describe(t, payload) {
            Ok(line) => println!("{line}"),
            Err(e) => println!("{t}: {e}"),
        }
        seen += 1;
        count.is_none_or(|n| seen < n)
    });
    if let Err(e) = result {
        eprintln!("mqtt_faces: {e}");
        std::process::exit(1);
    }
}
