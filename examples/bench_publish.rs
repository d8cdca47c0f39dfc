// SPDX-License-Identifier: MPL-2.0
//! MQTT publishing speed, before and after: the hand-written client `faceposepublish` used up to
//! commit 1a23ae1 (`examples/support/handwritten_mqtt/`, one PUBACK awaited per message) against
//! the rumqttc publisher of `src/mqtt/` (a window of `inflight` messages), in one run, against
//! one local Mosquitto this program starts on a free loopback port.
//!
//! ```text
//! cargo run --release --example bench_publish [-- --messages 5000 --inflight 100 --out out/bench_publish.md]
//! ```
//!
//! Two links to the broker: loopback straight (a round trip of some tens of microseconds), and
//! a relay in this program that delays every byte by 0.5 ms each way (a 1 ms round trip, a
//! local network), which is where waiting for each PUBACK costs. For QoS 0 and 1, and messages
//! of one face and of ten faces (468 landmarks each, the JSON the element sends):
//! - messages per second: `--messages` pushed at once (a queue large enough that none is
//!   dropped), timed from the first push until the publisher counts the last one as taken (the
//!   broker's PUBACK at QoS 1, written at QoS 0);
//! - latency: 300 messages pushed one every 2 ms (500 per second), each timed from its push
//!   until a subscriber on the same broker (connected straight) receives it; p50, p95 and p99.
//!
//! Prints one Markdown table (and writes it to `--out` when given).

#[path = "support/handwritten_mqtt/mod.rs"]
mod handwritten_mqtt;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use gstfacepose::engine::geometry::{BBox, Point};
use gstfacepose::engine::{Face, Pose, PoseMethod};
use gstfacepose::json;

const LATENCY_MESSAGES: u64 = 300;
const LATENCY_PERIOD: Duration = Duration::from_millis(2);
/// What the relay adds in each direction.
const RELAY_DELAY: Duration = Duration::from_micros(500);
/// Bound on any one wait (never reached when things work).
const BOUND: Duration = Duration::from_secs(120);

struct Mosquitto {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Mosquitto {
    fn start() -> Result<Mosquitto, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let dir =
            std::env::temp_dir().join(format!("facepose-bench-publish-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nset_tcp_nodelay true\nuser root\nlog_dest file {}/mosquitto.log\n",
                dir.display()
            ),
        )
        .map_err(|e| format!("{}: {e}", conf.display()))?;
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start mosquitto ({e}); apt-get install mosquitto"))?;
        let mut m = Mosquitto { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = m.child.try_wait() {
                return Err(format!(
                    "mosquitto exited ({status}): {}",
                    std::fs::read_to_string(m.dir.join("mosquitto.log")).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                let _ = m.child.kill();
                return Err(format!("mosquitto does not listen on {port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        m.port = port;
        Ok(m)
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A face as the element finds it: 468 landmarks with fractional coordinates.
fn face(id: u64, k: usize) -> Face {
    let pose = Pose {
        yaw: 12.345 + k as f32,
        pitch: -3.21,
        roll: 1.5,
    };
    let landmarks = (0..468)
        .map(|i| {
            let i = i as f32;
            [
                100.0 + (i * 0.731).sin() * 40.123 + k as f32 * 90.0,
                120.0 + (i * 0.377).cos() * 50.456,
                (i * 0.113).sin() * 9.789,
            ]
        })
        .collect();
    Face {
        id,
        bbox: BBox::new(60.5 + k as f32 * 90.0, 70.25, 140.75, 190.125),
        score: 0.987,
        keypoints: [Point { x: 90.5, y: 110.25 }; 5],
        landmarks,
        presence: 0.999,
        pose,
        rotation: pose.to_rotation(),
        method: PoseMethod::Fused,
        fit_pose: Some(pose),
        regressed_pose: Some(pose),
        regressor_weight: 0.3,
        scale: 1.0,
        fit_error: 0.012,
        attention: None,
    }
}

/// Message `seq` with `faces` faces (the first face's id is `seq`).
fn message(seq: u64, faces: usize) -> Vec<u8> {
    let faces: Vec<Face> = (0..faces)
        .map(|k| face(if k == 0 { seq } else { 1_000_000 + k as u64 }, k))
        .collect();
    let times = json::FrameTimes {
        pts: Some(seq * 33_333_333),
        duration: Some(33_333_333),
        running_time: Some(seq * 33_333_333),
        stream_time: Some(seq * 33_333_333),
        dts: None,
    };
    json::published_message("bench", &times, 1920, 1080, &faces, &[]).into_bytes()
}

/// The sequence number of a message (its first face's id).
fn seq_of(payload: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(payload).ok()?;
    let rest = text.split("\"faces\":[{\"id\":").nth(1)?;
    rest.split(',').next()?.parse().ok()
}

/// The two clients behind one face.
enum Client {
    Handwritten(handwritten_mqtt::publisher::Publisher),
    Rumqttc(gstfacepose::mqtt::Publisher),
}

impl Client {
    fn start(
        which: Which,
        address: &str,
        topic: &str,
        qos: u8,
        max_queued: usize,
        inflight: u16,
    ) -> Client {
        let (tx, rx) = mpsc::channel::<bool>();
        let client = match which {
            Which::Handwritten => {
                use handwritten_mqtt::publisher::{Config, Event, Publisher};
                let config = Config {
                    options: handwritten_mqtt::connection::Options {
                        address: address.into(),
                        client_id: format!("bench-old-{topic}"),
                        username: None,
                        password: None,
                        keep_alive_s: 30,
                        clean_session: true,
                        tls: None,
                    },
                    topic: topic.into(),
                    qos,
                    max_queued,
                };
                let p = Publisher::start(config, move |e| {
                    let _ = tx.send(matches!(e, Event::Connected { .. }));
                })
                .expect("the hand-written publisher starts");
                Client::Handwritten(p)
            }
            Which::Rumqttc => {
                use gstfacepose::mqtt::{Config, Event, Protocol, Publisher};
                let config = Config {
                    address: address.into(),
                    client_id: format!("bench-new-{topic}"),
                    username: None,
                    password: None,
                    keep_alive_s: 30,
                    tls: None,
                    protocol: Protocol::V311,
                    topic: topic.into(),
                    qos,
                    max_queued,
                    inflight,
                    max_packet_size: 16 << 20,
                    max_incoming_packet_size: 64 << 10,
                };
                let p = Publisher::start(config, move |e| {
                    let _ = tx.send(matches!(e, Event::Connected { .. }));
                })
                .expect("the rumqttc publisher starts");
                Client::Rumqttc(p)
            }
        };
        let deadline = Instant::now() + BOUND;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(true) => break,
                Ok(false) => panic!("{}: not connected to {address}", which.name()),
                Err(_) => assert!(
                    Instant::now() < deadline,
                    "{} does not connect",
                    which.name()
                ),
            }
        }
        client
    }

    fn push(&self, m: Vec<u8>) {
        match self {
            Client::Handwritten(p) => {
                p.push(m);
            }
            Client::Rumqttc(p) => {
                p.push(m, Vec::new());
            }
        }
    }

    fn published(&self) -> u64 {
        match self {
            Client::Handwritten(p) => p.published(),
            Client::Rumqttc(p) => p.published(),
        }
    }

    fn dropped(&self) -> u64 {
        match self {
            Client::Handwritten(p) => p.dropped(),
            Client::Rumqttc(p) => p.dropped() + p.rejected(),
        }
    }

    fn stop(self) {
        match self {
            Client::Handwritten(p) => {
                p.stop(Duration::from_secs(5));
            }
            Client::Rumqttc(p) => {
                p.stop(Duration::from_secs(5));
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Handwritten,
    Rumqttc,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Handwritten => "hand-written (1a23ae1)",
            Which::Rumqttc => "rumqttc",
        }
    }
}

/// A TCP relay to the broker that delays every byte by `delay` in each direction, without
/// limiting throughput (each direction: a reader stamps what it reads, a writer sends it on at
/// the stamp plus `delay`).
struct Relay {
    port: u16,
}

impl Relay {
    fn start(broker_port: u16, delay: Duration) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the relay");
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(broker) = TcpStream::connect(("127.0.0.1", broker_port)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = broker.set_nodelay(true);
                for (from, to) in [
                    (client.try_clone(), broker.try_clone()),
                    (broker.try_clone(), client.try_clone()),
                ] {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        std::thread::spawn(move || delay_line(from, to, delay));
                    }
                }
            }
        });
        Relay { port }
    }
}

fn delay_line(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    use std::io::{Read, Write};
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (at, data) in rx {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if to.write_all(&data).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
}

/// A subscriber to the paced topics that notes when each message arrived, by topic and sequence number.
struct Arrivals {
    seen: Arc<Mutex<HashMap<(String, u64), Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Arrivals {
    fn start(port: u16) -> Arrivals {
        use rumqttc::{Client, Event, MqttOptions, Packet, QoS, RecvTimeoutError};
        let mut o = MqttOptions::new(
            format!("bench-sub-{}", std::process::id()),
            "127.0.0.1",
            port,
        );
        o.set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut connection) = Client::new(o, 64);
        client
            .subscribe("bench/+/+/+/paced", QoS::AtMostOnce)
            .expect("subscribe");
        let deadline = Instant::now() + BOUND;
        loop {
            match connection.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
                Ok(Err(e)) => panic!("the subscriber: {e}"),
                _ => assert!(Instant::now() < deadline, "no SUBACK"),
            }
        }
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match connection.recv_timeout(Duration::from_millis(100)) {
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                        let now = Instant::now();
                        if let Some(seq) = seq_of(&p.payload) {
                            s.lock().unwrap().insert((p.topic.clone(), seq), now);
                        }
                    }
                    Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
                    Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            let _ = client.try_disconnect();
        });
        Arrivals {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn arrived(&self, topic: &str, seq: u64) -> Option<Instant> {
        self.seen
            .lock()
            .unwrap()
            .get(&(topic.to_owned(), seq))
            .copied()
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Measured {
    per_second: f64,
    /// p50, p95, p99 in milliseconds.
    latency: [f64; 3],
    lost: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[allow(clippy::too_many_arguments)]
fn measure(
    which: Which,
    address: &str,
    link: &str,
    arrivals: &Arrivals,
    qos: u8,
    faces: usize,
    messages: u64,
    inflight: u16,
) -> Measured {
    // Throughput: everything at once; the queue holds it all.
    let who = if which == Which::Handwritten {
        "old"
    } else {
        "new"
    };
    let topic = format!("bench/{link}-{who}/q{qos}/f{faces}/burst");
    let payloads: Vec<Vec<u8>> = (0..messages).map(|n| message(n, faces)).collect();
    let client = Client::start(which, address, &topic, qos, messages as usize + 1, inflight);
    let start = Instant::now();
    for p in payloads {
        client.push(p);
    }
    let deadline = start + BOUND;
    while client.published() < messages && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let per_second = client.published() as f64 / elapsed;
    let mut lost = messages - client.published().min(messages);
    lost += client.dropped();
    client.stop();

    // Latency: paced, push to arrival at the subscriber.
    let topic = format!("bench/{link}-{who}/q{qos}/f{faces}/paced");
    let client = Client::start(which, address, &topic, qos, 10_000, inflight);
    let mut pushed_at = Vec::new();
    let t0 = Instant::now();
    for n in 0..LATENCY_MESSAGES {
        let at = t0 + LATENCY_PERIOD * n as u32;
        let m = message(n, faces);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        pushed_at.push(Instant::now());
        client.push(m);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while (0..LATENCY_MESSAGES).any(|n| arrivals.arrived(&topic, n).is_none())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut ms: Vec<f64> = (0..LATENCY_MESSAGES)
        .filter_map(|n| {
            arrivals.arrived(&topic, n).map(|a| {
                a.saturating_duration_since(pushed_at[n as usize])
                    .as_secs_f64()
                    * 1e3
            })
        })
        .collect();
    lost += LATENCY_MESSAGES - ms.len() as u64;
    ms.sort_by(|a, b| a.total_cmp(b));
    client.stop();
    Measured {
        per_second,
        latency: [
            percentile(&ms, 0.50),
            percentile(&ms, 0.95),
            percentile(&ms, 0.99),
        ],
        lost,
    }
}

fn main() {
    let mut messages: u64 = 5000;
    let mut inflight: u16 = 100;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--messages" => {
                messages = value("--messages").parse().unwrap_or_else(|_| {
                    eprintln!("--messages needs a number");
                    std::process::exit(2)
                })
            }
            "--inflight" => {
                inflight = value("--inflight").parse().unwrap_or_else(|_| {
                    eprintln!("--inflight needs a number from 1 to 65535");
                    std::process::exit(2)
                })
            }
            "--out" => out = Some(PathBuf::from(value("--out"))),
            _ => {
                eprintln!("usage: bench_publish [--messages N] [--inflight N] [--out FILE]");
                std::process::exit(2)
            }
        }
    }
    let broker = match Mosquitto::start() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench_publish: {e}");
            std::process::exit(1)
        }
    };
    let arrivals = Arrivals::start(broker.port);
    let relay = Relay::start(broker.port, RELAY_DELAY);
    let links = [
        ("loopback", broker.address()),
        ("relay", format!("127.0.0.1:{}", relay.port)),
    ];
    let mut table = String::new();
    table.push_str(&format!(
        "MQTT publishing, one run against a local Mosquitto ({}): hand-written client of 1a23ae1 (before) vs rumqttc (after, inflight {inflight}); \
         link `loopback`: straight to the broker; `relay`: through a relay adding {} ms each way; \
         msg/s: {messages} messages pushed at once (one-face runs; ten-face runs: {}), until the publisher counts the last taken; \
         latency: {LATENCY_MESSAGES} messages at {} per second, push to arrival at a subscriber connected straight.\n\n",
        mosquitto_version(),
        RELAY_DELAY.as_secs_f64() * 1e3,
        (messages / 5).max(1),
        1000 / LATENCY_PERIOD.as_millis().max(1)
    ));
    table.push_str("| link | QoS | faces / message | bytes / message | msg/s before | msg/s after | after / before | latency before p50 / p95 / p99 (ms) | latency after p50 / p95 / p99 (ms) |\n");
    table.push_str("|---|---|---|---|---|---|---|---|---|\n");
    let mut notes = String::new();
    for (link, address) in &links {
        for qos in [0u8, 1] {
            for faces in [1usize, 10] {
                let n = if faces == 1 {
                    messages
                } else {
                    (messages / 5).max(1)
                };
                let before = measure(
                    Which::Handwritten,
                    address,
                    link,
                    &arrivals,
                    qos,
                    faces,
                    n,
                    inflight,
                );
                let after = measure(
                    Which::Rumqttc,
                    address,
                    link,
                    &arrivals,
                    qos,
                    faces,
                    n,
                    inflight,
                );
                let lat = |m: &Measured| {
                    format!(
                        "{:.2} / {:.2} / {:.2}",
                        m.latency[0], m.latency[1], m.latency[2]
                    )
                };
                let row = format!(
                    "| {link} | {qos} | {faces} | {} | {:.0} | {:.0} | {:.1}× | {} | {} |\n",
                    message(0, faces).len(),
                    before.per_second,
                    after.per_second,
                    after.per_second / before.per_second,
                    lat(&before),
                    lat(&after),
                );
                eprint!("{row}");
                table.push_str(&row);
                for (m, w) in [(&before, Which::Handwritten), (&after, Which::Rumqttc)] {
                    if m.lost > 0 {
                        notes.push_str(&format!(
                        "\n**{}: {} message(s) not accounted for ({link}, QoS {qos}, {faces} face(s)).**\n",
                        w.name(),
                        m.lost
                    ));
                    }
                }
            }
        }
    }
    table.push_str(&notes);
    println!("{table}");
    if let Some(path) = out {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(&path, &table) {
            eprintln!("bench_publish: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

fn mosquitto_version() -> String {
    Command::new("mosquitto")
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "mosquitto".into())
}
