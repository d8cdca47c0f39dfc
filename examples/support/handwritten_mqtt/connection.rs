// SPDX-License-Identifier: MPL-2.0
//! One MQTT 3.1.1 session over TCP (or TLS): connect, publish at QoS 0 or 1, subscribe, receive,
//! keep alive, disconnect. Blocking; the caller owns the thread. (The bench's baseline only.)

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::packet::{self, Connect, Packet};

/// How long connecting (TCP, TLS, CONNACK) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the broker may take to acknowledge a QoS 1 message or answer a ping.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Options {
    /// host:port
    pub address: String,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive_s: u16,
    pub clean_session: bool,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why a connection failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The network or the broker is away: worth trying again.
    Io(io::Error),
    /// The broker answered and refused us (CONNACK return code): trying again will not help.
    Refused(u8),
    /// The address or TLS settings are wrong: trying again will not help.
    Config(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Io(e) => write!(f, "{e}"),
            ConnectError::Refused(code) => write!(
                f,
                "the broker refused the connection: {} (CONNACK code {code})",
                packet::connack_reason(*code)
            ),
            ConnectError::Config(e) => f.write_str(e),
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Splits `host:port` (`[v6]:port` too), or says what is wrong with it.
pub fn split_address(address: &str) -> Result<(&str, u16), String> {
    let bad = || format!("address '{address}' is not host:port (for example 127.0.0.1:1883)");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host, port))
}

/// A connected session.
pub struct Connection {
    stream: Stream,
    next_id: u16,
}

impl Connection {
    /// Connects and waits for the broker's CONNACK.
    pub fn open(o: &Options) -> Result<Connection, ConnectError> {
        let (host, port) = split_address(&o.address).map_err(ConnectError::Config)?;
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| {
                ConnectError::Io(io::Error::new(
                    e.kind(),
                    format!("cannot resolve {host}: {e}"),
                ))
            })?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or(ConnectError::Io(last))?;
        tcp.set_nodelay(true).map_err(ConnectError::Io)?;
        tcp.set_read_timeout(Some(CONNECT_TIMEOUT))
            .map_err(ConnectError::Io)?;
        tcp.set_write_timeout(Some(REPLY_TIMEOUT))
            .map_err(ConnectError::Io)?;
        let stream = match &o.tls {
            None => Stream::Plain(tcp),
            Some(config) => {
                let name =
                    rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                        ConnectError::Config(format!(
                            "'{host}' cannot be checked against a certificate: {e}"
                        ))
                    })?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| ConnectError::Config(format!("TLS set-up: {e}")))?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        };
        let mut c = Connection { stream, next_id: 1 };
        let connect = packet::connect(&Connect {
            client_id: &o.client_id,
            username: o.username.as_deref(),
            password: o.password.as_deref(),
            keep_alive_s: o.keep_alive_s,
            clean_session: o.clean_session,
        })
        .map_err(ConnectError::Io)?;
        c.send(&connect).map_err(ConnectError::Io)?;
        match packet::read(&mut c.stream).map_err(ConnectError::Io)? {
            Packet::ConnAck { code: 0, .. } => {}
            Packet::ConnAck { code, .. } => return Err(ConnectError::Refused(code)),
            other => {
                return Err(ConnectError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("expected CONNACK, got {other:?}"),
                )));
            }
        }
        c.set_timeout(Some(REPLY_TIMEOUT))
            .map_err(ConnectError::Io)?;
        Ok(c)
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// How long a read may wait (None: for ever).
    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.tcp().set_read_timeout(t)
    }

    fn packet_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id
    }

    /// Publishes at QoS 0, or at QoS 1 and waits for the PUBACK. `dup` marks a resend.
    pub fn publish(&mut self, topic: &str, qos: u8, dup: bool, payload: &[u8]) -> io::Result<()> {
        if qos == 0 {
            return self.send(&packet::publish(topic, None, false, payload)?);
        }
        let id = self.packet_id();
        self.send(&packet::publish(topic, Some(id), dup, payload)?)?;
        loop {
            match packet::read(&mut self.stream)? {
                Packet::PubAck(acked) if acked == id => return Ok(()),
                Packet::PubAck(_) | Packet::PingResp | Packet::Other(_) => {}
                Packet::Publish { packet_id, .. } => {
                    if let Some(pid) = packet_id {
                        self.send(&packet::puback(pid))?;
                    }
                }
                p => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected {p:?} while waiting for PUBACK {id}"),
                    ));
                }
            }
        }
    }

    /// Sends PINGREQ and waits for PINGRESP.
    pub fn ping(&mut self) -> io::Result<()> {
        self.send(&packet::PINGREQ)?;
        loop {
            if let Packet::PingResp = packet::read(&mut self.stream)? {
                return Ok(());
            }
        }
    }

    /// Subscribes to `filter` and waits for the SUBACK.
    pub fn subscribe(&mut self, filter: &str, qos: u8) -> io::Result<()> {
        let id = self.packet_id();
        self.send(&packet::subscribe(id, filter, qos)?)?;
        loop {
            match packet::read(&mut self.stream)? {
                Packet::SubAck { packet_id, codes } if packet_id == id => {
                    return if codes.contains(&0x80) {
                        Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            format!("the broker refused the subscription to {filter}"),
                        ))
                    } else {
                        Ok(())
                    };
                }
                Packet::Publish {
                    packet_id: Some(pid),
                    ..
                } => self.send(&packet::puback(pid))?,
                _ => {}
            }
        }
    }

    /// The next message of a subscription (acknowledged when at QoS 1), or the read's error (a
    /// timeout gives `WouldBlock` or `TimedOut`).
    pub fn receive(&mut self) -> io::Result<(String, Vec<u8>)> {
        loop {
            if let Packet::Publish {
                topic,
                packet_id,
                payload,
            } = packet::read(&mut self.stream)?
            {
                if let Some(pid) = packet_id {
                    self.send(&packet::puback(pid))?;
                }
                return Ok((topic, payload));
            }
        }
    }

    /// Says goodbye (the broker then discards a will; errors do not matter any more).
    pub fn disconnect(mut self) {
        let _ = self.send(&packet::DISCONNECT);
        let _ = self.stream.tcp().shutdown(std::net::Shutdown::Both);
    }
}
