// SPDX-License-Identifier: MPL-2.0
//! MQTT 3.1.1 packets: what this client sends (CONNECT, PUBLISH, PUBACK, SUBSCRIBE, PINGREQ,
//! DISCONNECT) as bytes, and what it reads back, parsed from a byte stream.

use std::io::{self, Read};

/// The largest remaining length the protocol can express (four length bytes).
const MAX_REMAINING: usize = 268_435_455;

/// The CONNECT packet's settings.
#[derive(Debug, Clone, Default)]
pub struct Connect<'a> {
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub keep_alive_s: u16,
    /// Without a clean session the broker keeps the subscriptions and queued QoS 1 messages.
    pub clean_session: bool,
}

/// A packet read from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    ConnAck {
        session_present: bool,
        code: u8,
    },
    Publish {
        topic: String,
        packet_id: Option<u16>,
        payload: Vec<u8>,
    },
    PubAck(u16),
    SubAck {
        packet_id: u16,
        codes: Vec<u8>,
    },
    PingResp,
    /// Any other type (its first byte), read in full and ignored.
    Other(u8),
}

/// What a CONNACK return code means (MQTT 3.1.1, 3.2.2.3).
pub fn connack_reason(code: u8) -> &'static str {
    match code {
        0 => "accepted",
        1 => "unacceptable protocol version",
        2 => "client identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorised",
        _ => "unknown return code",
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A packet from its first byte and body (the remaining-length bytes in between).
fn frame(first: u8, body: &[u8]) -> io::Result<Vec<u8>> {
    if body.len() > MAX_REMAINING {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "an MQTT packet holds at most {MAX_REMAINING} bytes, not {}",
                body.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    Ok(out)
}

fn check_str(what: &str, s: &str) -> io::Result<()> {
    if s.len() > u16::MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the {what} is longer than 65535 bytes"),
        ));
    }
    Ok(())
}

pub fn connect(c: &Connect) -> io::Result<Vec<u8>> {
    check_str("client id", c.client_id)?;
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(4); // protocol level 3.1.1
    let mut flags = 0u8;
    if c.clean_session {
        flags |= 0x02;
    }
    if let Some(u) = c.username {
        check_str("user name", u)?;
        flags |= 0x80;
    }
    if let Some(p) = c.password {
        check_str("password", p)?;
        flags |= 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&c.keep_alive_s.to_be_bytes());
    put_str(&mut body, c.client_id.as_bytes());
    if let Some(u) = c.username {
        put_str(&mut body, u.as_bytes());
    }
    if let Some(p) = c.password {
        put_str(&mut body, p.as_bytes());
    }
    frame(0x10, &body)
}

/// PUBLISH at QoS 0 (`packet_id` None) or QoS 1; `dup` marks a resend.
pub fn publish(
    topic: &str,
    packet_id: Option<u16>,
    dup: bool,
    payload: &[u8],
) -> io::Result<Vec<u8>> {
    check_str("topic", topic)?;
    let mut body = Vec::with_capacity(topic.len() + 4 + payload.len());
    put_str(&mut body, topic.as_bytes());
    let mut first = 0x30;
    if let Some(id) = packet_id {
        body.extend_from_slice(&id.to_be_bytes());
        first |= 0x02;
        if dup {
            first |= 0x08;
        }
    }
    body.extend_from_slice(payload);
    frame(first, &body)
}

pub fn puback(packet_id: u16) -> Vec<u8> {
    vec![0x40, 2, (packet_id >> 8) as u8, packet_id as u8]
}

/// SUBSCRIBE to one topic filter at `qos`.
pub fn subscribe(packet_id: u16, filter: &str, qos: u8) -> io::Result<Vec<u8>> {
    check_str("topic filter", filter)?;
    let mut body = packet_id.to_be_bytes().to_vec();
    put_str(&mut body, filter.as_bytes());
    body.push(qos.min(1));
    frame(0x82, &body)
}

pub const PINGREQ: [u8; 2] = [0xc0, 0];
pub const DISCONNECT: [u8; 2] = [0xe0, 0];

fn malformed(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed MQTT packet: {why}"),
    )
}

fn u16_at(b: &[u8], at: usize) -> io::Result<u16> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| malformed("too short"))
}

/// Reads one whole packet (blocking, as the stream's timeouts allow).
pub fn read(stream: &mut impl Read) -> io::Result<Packet> {
    let mut first = [0u8; 1];
    stream.read_exact(&mut first)?;
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let mut b = [0u8; 1];
        stream.read_exact(&mut b)?;
        len |= ((b[0] & 0x7f) as usize) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err(malformed("remaining length over four bytes"));
        }
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    parse(first[0], body)
}

fn parse(first: u8, body: Vec<u8>) -> io::Result<Packet> {
    Ok(match first >> 4 {
        2 => {
            if body.len() != 2 {
                return Err(malformed("CONNACK is not 2 bytes"));
            }
            Packet::ConnAck {
                session_present: body[0] & 1 == 1,
                code: body[1],
            }
        }
        3 => {
            let qos = (first >> 1) & 3;
            let topic_len = u16_at(&body, 0)? as usize;
            let topic = body
                .get(2..2 + topic_len)
                .ok_or_else(|| malformed("topic past the end"))?;
            let topic =
                String::from_utf8(topic.to_vec()).map_err(|_| malformed("topic not UTF-8"))?;
            let mut at = 2 + topic_len;
            let packet_id = if qos > 0 {
                at += 2;
                Some(u16_at(&body, at - 2)?)
            } else {
                None
            };
            Packet::Publish {
                topic,
                packet_id,
                payload: body[at.min(body.len())..].to_vec(),
            }
        }
        4 => Packet::PubAck(u16_at(&body, 0)?),
        9 => Packet::SubAck {
            packet_id: u16_at(&body, 0)?,
            codes: body.get(2..).unwrap_or_default().to_vec(),
        },
        13 => Packet::PingResp,
        _ => Packet::Other(first),
    })
}
