// SPDX-License-Identifier: MPL-2.0
//! A publisher over rumqttc that owns the broker connection on a thread of its own. Callers hand
//! it messages without ever waiting for the network: it keeps up to `max_queued` of them while the
//! broker is away (dropping the oldest beyond that, counted), sends up to `inflight` QoS 1
//! messages before the first acknowledgement comes back, keeps a copy of every message until the
//! broker took it (so a lost connection loses nothing: the unacknowledged ones go back to the
//! front of the queue and are sent again on the next connection), and reconnects with back-off,
//! telling the caller what happens through events.
//!
//! rumqttc does the protocol (MQTT 3.1.1 or 5: packets, keep-alive, packet ids, the size limits);
//! this file does the queue, the counts and the reporting. The thread runs rumqttc's event loop on
//! a current-thread tokio runtime; callers only take a mutex for as long as it takes to queue a
//! message and hand at most `inflight` of them to rumqttc's channel (a non-blocking send).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5 as mqtt5;

/// The first wait before reconnecting; it doubles up to `MAX_BACKOFF`.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// How long connecting (TCP, TLS and the broker's CONNACK) may take before the attempt counts as
/// failed (a broker that accepts the connection and never answers).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long stopping waits for the DISCONNECT to go out once the queue is drained.
const GOODBYE_TIMEOUT: Duration = Duration::from_millis(500);
/// The largest packet MQTT can carry (remaining length of 268,435,455 plus the fixed header).
pub const MQTT_MAX_PACKET: usize = 268_435_455 + 5;

/// MQTT 3.1.1 or 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V311,
    V5,
}

/// TLS: the configuration (see [`super::tls::client_config`]) and the CA file it was made from,
/// which errors name.
#[derive(Debug, Clone)]
pub struct Tls {
    pub config: Arc<rustls::ClientConfig>,
    pub ca_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// host:port
    pub address: String,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Seconds (at least 1); rumqttc pings after this long and gives the connection up when the
    /// ping is not answered by the next one.
    pub keep_alive_s: u16,
    pub tls: Option<Tls>,
    pub protocol: Protocol,
    pub topic: String,
    /// 0 or 1.
    pub qos: u8,
    /// Messages kept while the broker is away (at least 1).
    pub max_queued: usize,
    /// QoS 1 messages sent before their acknowledgement (at least 1); under MQTT 5 the broker's
    /// receive maximum lowers it.
    pub inflight: u16,
    /// The largest packet sent (bytes, fixed header included); a message that would make a larger
    /// one is rejected (counted, reported), never sent.
    pub max_packet_size: usize,
    /// The largest packet accepted from the broker (bytes); a larger one ends the session with a
    /// fatal error before anything of it is buffered.
    pub max_incoming_packet_size: usize,
}

/// What happened to the connection, for the caller to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Connected; `again` after an outage, with the attempts it took and the messages dropped
    /// during it.
    Connected {
        again: bool,
        attempts: u32,
        dropped: u64,
    },
    /// The first failed attempt of an outage (later ones come as `Retrying`).
    Unreachable { error: String, retry_in: Duration },
    Retrying {
        attempts: u32,
        error: String,
        retry_in: Duration,
    },
    /// A working connection broke; the messages not acknowledged yet are sent again.
    Lost(String),
    /// The unacknowledged messages taken back after a lost connection overfilled the queue: the
    /// oldest were dropped (the first drop of an outage; `Event::Connected` carries the count).
    DroppingOldest,
    /// The broker refused us (credentials, client id, certificate) or broke the protocol in a way
    /// retrying will not mend (a packet over `max_incoming_packet_size`): the publisher gives up;
    /// messages pushed from now on are discarded.
    Refused(String),
    /// A message was not sent: too large for the broker's own limit (MQTT 5), or refused by the
    /// broker's acknowledgement (MQTT 5 reason code). `total`: rejected messages so far.
    Rejected { why: String, total: u64 },
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The queue was full: the oldest message was dropped. `first` for the first drop since
    /// the last report (`Event::Connected` carries the count).
    DroppedOldest {
        first: bool,
    },
    /// The message would make a packet of `size` bytes, over `max` (max_packet_size): not sent.
    /// `total`: rejected messages so far.
    Rejected {
        size: usize,
        max: usize,
        total: u64,
    },
    /// The publisher has given up (see `Event::Refused`): the message counts as dropped.
    Discarded,
}

/// The counts at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub published: u64,
    /// Queue overflows, and (in `left`) what was still waiting at the end.
    pub dropped: u64,
    pub rejected: u64,
    /// Messages still queued or unacknowledged when stopping ended (included in `dropped`).
    pub left: u64,
}

struct Message {
    payload: Vec<u8>,
    /// MQTT 5 user properties (ignored under 3.1.1).
    properties: Vec<(String, String)>,
    /// Published on `<topic>/<subtopic>` instead of the topic itself.
    subtopic: Option<&'static str>,
}

impl Message {
    /// The topic this message goes to.
    fn topic<'a>(&self, config: &'a Config) -> std::borrow::Cow<'a, str> {
        match self.subtopic {
            Some(sub) => format!("{}/{sub}", config.topic).into(),
            None => config.topic.as_str().into(),
        }
    }
}

/// A message handed to rumqttc: its packet id once written (QoS 1).
struct Sent {
    written: Option<u16>,
    message: Message,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Message>,
    sent: VecDeque<Sent>,
    connected: bool,
    /// The window now: the configured one, lowered by the broker's receive maximum (MQTT 5).
    window: usize,
    /// The broker's maximum packet size (MQTT 5 CONNACK), if it named one.
    broker_max_packet: Option<usize>,
    stopping: Option<Instant>,
    failed: bool,
    dropped: u64,
    dropped_unreported: u64,
    published: u64,
    rejected: u64,
    /// Events found under the lock (rejections), for the thread to report.
    notes: Vec<Event>,
}

#[derive(Clone)]
enum Sender {
    V311(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

enum EventLoop {
    V311(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the thread to stop (or to stop waiting out a back-off).
    wake: tokio::sync::Notify,
    sender: Sender,
    config: Config,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands waiting messages to rumqttc while connected and the window has room. Under the lock
    /// (`q`): a message is always in exactly one of `waiting` and `sent`.
    fn pump(&self, q: &mut Queue) {
        while q.connected && q.sent.len() < q.window {
            let Some(message) = q.waiting.pop_front() else {
                break;
            };
            if let Some(max) = q.broker_max_packet {
                let size = packet_size_bound(&self.config, &message);
                if size > max {
                    q.rejected += 1;
                    let total = q.rejected;
                    q.notes.push(Event::Rejected {
                        why: format!(
                            "a message of {size} bytes is over the broker's maximum packet size of {max} bytes (its CONNACK)"
                        ),
                        total,
                    });
                    continue;
                }
            }
            match self.sender.try_publish(&self.config, &message) {
                Ok(()) => q.sent.push_back(Sent {
                    written: None,
                    message,
                }),
                Err(()) => {
                    // rumqttc's channel is full or closed (it holds the window plus a margin, so
                    // neither happens while the thread runs): try again on the next event.
                    q.waiting.push_front(message);
                    break;
                }
            }
        }
    }
}

impl Sender {
    fn try_publish(&self, config: &Config, message: &Message) -> Result<(), ()> {
        match self {
            Sender::V311(c) => c
                .try_publish(
                    message.topic(config),
                    qos_v311(config.qos),
                    false,
                    message.payload.clone(),
                )
                .map_err(|_| ()),
            Sender::V5(c) => c
                .try_publish_with_properties(
                    message.topic(config),
                    qos_v5(config.qos),
                    false,
                    message.payload.clone(),
                    mqtt5::PublishProperties {
                        payload_format_indicator: Some(1),
                        content_type: Some(CONTENT_TYPE.into()),
                        user_properties: message.properties.clone(),
                        ..Default::default()
                    },
                )
                .map_err(|_| ()),
        }
    }

    fn try_disconnect(&self) {
        // A full or closed channel only means the goodbye is skipped.
        match self {
            Sender::V311(c) => {
                let _ = c.try_disconnect();
            }
            Sender::V5(c) => {
                let _ = c.try_disconnect();
            }
        }
    }
}

const CONTENT_TYPE: &str = "application/json";

fn qos_v311(qos: u8) -> rumqttc::QoS {
    if qos == 0 {
        rumqttc::QoS::AtMostOnce
    } else {
        rumqttc::QoS::AtLeastOnce
    }
}

fn qos_v5(qos: u8) -> rumqttc::v5::mqttbytes::QoS {
    if qos == 0 {
        rumqttc::v5::mqttbytes::QoS::AtMostOnce
    } else {
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce
    }
}

/// An upper bound of the PUBLISH packet's size in bytes: fixed header (at most 5), topic, packet
/// id, and under MQTT 5 the properties this publisher sets.
fn packet_size_bound(config: &Config, message: &Message) -> usize {
    let mut size = 5 + 2 + message.topic(config).len() + 2 + message.payload.len();
    if config.protocol == Protocol::V5 {
        // Properties length (at most 4), payload format indicator (2), content type (1 + 2 + n),
        // each user property (1 + 2 + key + 2 + value).
        size += 4 + 2 + 3 + CONTENT_TYPE.len();
        size += message
            .properties
            .iter()
            .map(|(k, v)| 5 + k.len() + v.len())
            .sum::<usize>();
    }
    size
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

/// What the event loop reported, in this file's terms.
enum Happened {
    Connected {
        receive_max: Option<u16>,
        max_packet: Option<usize>,
    },
    /// A PUBLISH went out (`0`: at QoS 0).
    Written(u16),
    /// The broker acknowledged a QoS 1 PUBLISH; `refused`: an MQTT 5 reason code saying it did
    /// not take it.
    Acked {
        pkid: u16,
        refused: Option<String>,
    },
    Disconnected,
    Other,
}

/// Why polling failed.
enum Failure {
    /// Worth trying again (network, a broker that went away or does not answer).
    Retry(String),
    /// Trying again will not help.
    Fatal(String),
}

fn tls_failure(
    config: &Config,
    error: &(dyn std::error::Error + 'static),
    text: String,
) -> Failure {
    // rustls' own error, wherever it lies in the chain (tokio-rustls wraps it in an io::Error).
    let mut next = Some(error);
    let mut found = None;
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            found = Some(r);
            break;
        }
        if let Some(r) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            found = Some(r);
            break;
        }
        next = e.source();
    }
    let ca = config
        .tls
        .as_ref()
        .map(|t| t.ca_file.display().to_string())
        .unwrap_or_default();
    match found {
        Some(rustls::Error::InvalidCertificate(why)) => Failure::Fatal(format!(
            "TLS: the broker's certificate is not accepted with the certificate authorities of the tls-ca file {ca}: {why:?}"
        )),
        Some(rustls::Error::AlertReceived(alert)) => Failure::Fatal(format!(
            "TLS: the broker ended the handshake ({alert:?}): check tls-cert and tls-key, and that the broker trusts them (tls-ca {ca})"
        )),
        Some(r) => Failure::Retry(format!("TLS: {r}")),
        None => Failure::Retry(text),
    }
}

fn incoming_too_large(size: usize, max: usize) -> Failure {
    Failure::Fatal(format!(
        "the broker sent a packet of {size} bytes, over the limit of {max} bytes (max-incoming-packet-size); the connection was closed before reading it"
    ))
}

fn timeout_failure() -> Failure {
    Failure::Retry(format!(
        "no answer within {} s (TCP, TLS and the broker's CONNACK): the broker accepted the connection but does not answer",
        CONNECT_TIMEOUT.as_secs()
    ))
}

fn failure_v311(config: &Config, e: rumqttc::ConnectionError) -> Failure {
    use rumqttc::{ConnectionError as C, StateError as S};
    match e {
        C::ConnectionRefused(code) => {
            let (n, why) = match code {
                rumqttc::ConnectReturnCode::Success => (0, "accepted"),
                rumqttc::ConnectReturnCode::RefusedProtocolVersion => {
                    (1, "unacceptable protocol version")
                }
                rumqttc::ConnectReturnCode::BadClientId => (2, "client identifier rejected"),
                rumqttc::ConnectReturnCode::ServiceUnavailable => (3, "server unavailable"),
                rumqttc::ConnectReturnCode::BadUserNamePassword => (4, "bad user name or password"),
                rumqttc::ConnectReturnCode::NotAuthorized => (5, "not authorised"),
            };
            Failure::Fatal(format!(
                "the broker refused the connection: {why} (CONNACK code {n})"
            ))
        }
        C::NetworkTimeout => timeout_failure(),
        C::FlushTimeout => Failure::Retry(format!(
            "could not write to the broker within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
        C::MqttState(S::Deserialization(rumqttc::Error::PayloadSizeLimitExceeded(size))) => {
            incoming_too_large(size, config.max_incoming_packet_size)
        }
        C::MqttState(S::AwaitPingResp) => no_ping_answer(config),
        C::MqttState(S::ConnectionAborted) => closed_by_broker(),
        C::NotConnAck(p) => not_connack(&p),
        e @ (C::Tls(_) | C::Io(_)) => {
            let text = e.to_string();
            tls_failure(config, &e, text)
        }
        e => Failure::Retry(e.to_string()),
    }
}

fn no_ping_answer(config: &Config) -> Failure {
    Failure::Retry(format!(
        "no answer to a ping within the keep-alive interval ({} s)",
        config.keep_alive_s
    ))
}

fn closed_by_broker() -> Failure {
    Failure::Retry("the broker closed the connection".into())
}

fn not_connack(packet: &dyn std::fmt::Debug) -> Failure {
    Failure::Retry(format!(
        "the broker answered CONNECT with {packet:?}, not with CONNACK"
    ))
}

fn failure_v5(config: &Config, e: rumqttc::v5::ConnectionError) -> Failure {
    use rumqttc::v5::mqttbytes::Error as M;
    use rumqttc::v5::{ConnectionError as C, StateError as S};
    match e {
        C::ConnectionRefused(code) | C::MqttState(S::ConnFail { reason: code }) => Failure::Fatal(
            format!("the broker refused the connection: {code:?} (MQTT 5 CONNACK reason)"),
        ),
        C::Timeout(_) => timeout_failure(),
        C::MqttState(S::IncomingPacketTooLarge { pkt_size, max }) => {
            incoming_too_large(pkt_size, max)
        }
        C::MqttState(S::Deserialization(M::PayloadSizeLimitExceeded { pkt_size, max })) => {
            incoming_too_large(pkt_size, max as usize)
        }
        C::MqttState(S::AwaitPingResp) => no_ping_answer(config),
        C::MqttState(S::ConnectionAborted) => closed_by_broker(),
        C::MqttState(S::ServerDisconnect {
            reason_code,
            reason_string,
        }) => Failure::Retry(format!(
            "the broker disconnected: {reason_code:?}{}",
            reason_string.map(|s| format!(" ({s})")).unwrap_or_default()
        )),
        C::NotConnAck(p) => not_connack(&p),
        e @ (C::Tls(_) | C::Io(_)) => {
            let text = e.to_string();
            tls_failure(config, &e, text)
        }
        e => Failure::Retry(e.to_string()),
    }
}

impl EventLoop {
    async fn poll(&mut self, config: &Config) -> Result<Happened, Failure> {
        match self {
            EventLoop::V311(l) => {
                use rumqttc::{Event as E, Outgoing as O, Packet as P};
                match l.poll().await {
                    Ok(E::Incoming(P::ConnAck(_))) => Ok(Happened::Connected {
                        receive_max: None,
                        max_packet: None,
                    }),
                    Ok(E::Incoming(P::PubAck(a))) => Ok(Happened::Acked {
                        pkid: a.pkid,
                        refused: None,
                    }),
                    Ok(E::Outgoing(O::Publish(pkid))) => Ok(Happened::Written(pkid)),
                    Ok(E::Outgoing(O::Disconnect)) => Ok(Happened::Disconnected),
                    Ok(_) => Ok(Happened::Other),
                    Err(e) => Err(failure_v311(config, e)),
                }
            }
            EventLoop::V5(l) => {
                use mqtt5::{Packet as P, PubAckReason as R};
                use rumqttc::Outgoing as O;
                use rumqttc::v5::Event as E;
                match l.poll().await {
                    Ok(E::Incoming(P::ConnAck(c))) => {
                        let props = c.properties.as_ref();
                        Ok(Happened::Connected {
                            receive_max: props.and_then(|p| p.receive_max),
                            max_packet: props.and_then(|p| p.max_packet_size).map(|m| m as usize),
                        })
                    }
                    Ok(E::Incoming(P::PubAck(a))) => Ok(Happened::Acked {
                        pkid: a.pkid,
                        refused: match a.reason {
                            R::Success | R::NoMatchingSubscribers => None,
                            r => Some(format!("{r:?}")),
                        },
                    }),
                    Ok(E::Outgoing(O::Publish(pkid))) => Ok(Happened::Written(pkid)),
                    Ok(E::Outgoing(O::Disconnect)) => Ok(Happened::Disconnected),
                    Ok(_) => Ok(Happened::Other),
                    Err(e) => Err(failure_v5(config, e)),
                }
            }
        }
    }

    /// After a failure: forgets what rumqttc kept of the session (its pending and in-flight
    /// copies, events not yet returned, requests still in its channel). This publisher keeps
    /// its own copies and sends them again itself; rumqttc would drop its copies anyway on a
    /// clean session.
    fn forget(&mut self) {
        match self {
            EventLoop::V311(l) => {
                l.clean();
                l.pending.clear();
                l.state.events.clear();
            }
            EventLoop::V5(l) => {
                l.clean();
                l.pending.clear();
                l.state.events.clear();
            }
        }
    }
}

pub struct Publisher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    /// Starts the thread; `on_event` runs on it. Errors: the address, or the thread.
    pub fn start(
        config: Config,
        on_event: impl Fn(Event) + Send + 'static,
    ) -> Result<Publisher, String> {
        let (host, port) = split_address(&config.address)?;
        let window = config.inflight.max(1);
        // Room for the whole window and the DISCONNECT: a send to it never finds it full.
        let capacity = usize::from(window) + 8;
        let keep_alive = Duration::from_secs(u64::from(config.keep_alive_s.max(1)));
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(CONNECT_TIMEOUT.as_secs());
        let (sender, event_loop) = match config.protocol {
            Protocol::V311 => {
                let mut o = rumqttc::MqttOptions::new(config.client_id.as_str(), host, port);
                o.set_keep_alive(keep_alive)
                    .set_clean_session(true)
                    .set_inflight(window)
                    .set_max_packet_size(config.max_incoming_packet_size, config.max_packet_size);
                if let Some(user) = &config.username {
                    o.set_credentials(user.as_str(), config.password.clone().unwrap_or_default());
                }
                if let Some(tls) = &config.tls {
                    o.set_transport(rumqttc::Transport::tls_with_config(
                        rumqttc::TlsConfiguration::Rustls(tls.config.clone()),
                    ));
                }
                let (client, mut event_loop) = rumqttc::AsyncClient::new(o, capacity);
                event_loop.set_network_options(network);
                (Sender::V311(client), EventLoop::V311(Box::new(event_loop)))
            }
            Protocol::V5 => {
                let mut o = rumqttc::v5::MqttOptions::new(config.client_id.as_str(), host, port);
                o.set_keep_alive(keep_alive)
                    .set_clean_start(true)
                    .set_outgoing_inflight_upper_limit(window)
                    .set_max_packet_size(Some(
                        u32::try_from(config.max_incoming_packet_size).unwrap_or(u32::MAX),
                    ))
                    .set_connection_timeout(CONNECT_TIMEOUT.as_secs())
                    .set_network_options(network);
                if let Some(user) = &config.username {
                    o.set_credentials(user.as_str(), config.password.clone().unwrap_or_default());
                }
                if let Some(tls) = &config.tls {
                    o.set_transport(rumqttc::Transport::tls_with_config(
                        rumqttc::TlsConfiguration::Rustls(tls.config.clone()),
                    ));
                }
                let (client, event_loop) = rumqttc::v5::AsyncClient::new(o, capacity);
                (Sender::V5(client), EventLoop::V5(Box::new(event_loop)))
            }
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                window: usize::from(window),
                ..Queue::default()
            }),
            wake: tokio::sync::Notify::new(),
            sender,
            config,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("facepose-mqtt".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run(&s, event_loop, &on_event)),
                    Err(e) => {
                        s.lock().failed = true;
                        on_event(Event::Refused(format!(
                            "cannot start the MQTT runtime: {e}"
                        )));
                    }
                }
            })
            .map_err(|e| format!("cannot start the publisher thread: {e}"))?;
        Ok(Publisher {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues one message for the topic (MQTT 5 user properties with it); never waits for the
    /// network.
    pub fn push(&self, payload: Vec<u8>, properties: Vec<(String, String)>) -> Pushed {
        self.queue(Message {
            payload,
            properties,
            subtopic: None,
        })
    }

    /// [`Publisher::push`] for `<topic>/<subtopic>`, in the same queue (so in order with the
    /// topic's messages, under the same limits and counters).
    pub fn push_to(
        &self,
        subtopic: &'static str,
        payload: Vec<u8>,
        properties: Vec<(String, String)>,
    ) -> Pushed {
        self.queue(Message {
            payload,
            properties,
            subtopic: Some(subtopic),
        })
    }

    fn queue(&self, message: Message) -> Pushed {
        let config = &self.shared.config;
        let mut q = self.shared.lock();
        if q.failed {
            q.dropped += 1;
            return Pushed::Discarded;
        }
        let size = packet_size_bound(config, &message);
        if size > config.max_packet_size {
            q.rejected += 1;
            return Pushed::Rejected {
                size,
                max: config.max_packet_size,
                total: q.rejected,
            };
        }
        let mut pushed = Pushed::Queued;
        while q.waiting.len() >= config.max_queued.max(1) {
            q.waiting.pop_front();
            q.dropped += 1;
            q.dropped_unreported += 1;
            pushed = Pushed::DroppedOldest {
                first: q.dropped_unreported == 1,
            };
        }
        q.waiting.push_back(message);
        // A rejection by the broker's own limit is reported by the thread after its next event.
        self.shared.pump(&mut q);
        pushed
    }

    /// Messages dropped so far (queue full while the broker was away).
    pub fn dropped(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// Messages the broker took so far (acknowledged at QoS 1, written at QoS 0).
    pub fn published(&self) -> u64 {
        self.shared.lock().published
    }

    /// Messages not sent: over a packet size limit, or refused by the broker (MQTT 5).
    pub fn rejected(&self) -> u64 {
        self.shared.lock().rejected
    }

    /// Messages waiting, or sent and not acknowledged yet.
    pub fn queued(&self) -> usize {
        let q = self.shared.lock();
        q.waiting.len() + q.sent.len()
    }

    /// Stops the thread: while connected (or still making its first connection) it first sends
    /// what is queued, for at most `drain`; what is left then counts as dropped (`Counts::left`).
    pub fn stop(mut self, drain: Duration) -> Counts {
        self.shutdown(drain);
        let mut q = self.shared.lock();
        let left = (q.waiting.len() + q.sent.len()) as u64;
        q.waiting.clear();
        q.sent.clear();
        q.dropped += left;
        Counts {
            published: q.published,
            dropped: q.dropped,
            rejected: q.rejected,
            left,
        }
    }

    fn shutdown(&mut self, drain: Duration) {
        self.shared.lock().stopping = Some(Instant::now() + drain);
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            // Dropped from its own thread (an event handler let go of the last owner): it ends
            // by itself once `stopping` is seen.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

/// Waits `t`, or until told to stop.
async fn nap(shared: &Shared, t: Duration) {
    if shared.lock().stopping.is_some() {
        return;
    }
    let _ = tokio::time::timeout(t, shared.wake.notified()).await;
}

async fn run(shared: &Shared, mut event_loop: EventLoop, on_event: &dyn Fn(Event)) {
    let config = &shared.config;
    let mut connected_once = false;
    let mut attempts = 0u32;
    let mut backoff = MIN_BACKOFF;
    loop {
        let stopping = {
            let q = shared.lock();
            match q.stopping {
                // Not connected: the drain waits only for a first connection still being made
                // (a stream shorter than the connection's set-up keeps its messages).
                Some(end)
                    if (!q.connected && (connected_once || attempts > 0))
                        || (q.waiting.is_empty() && q.sent.is_empty())
                        || Instant::now() >= end =>
                {
                    break;
                }
                s => s,
            }
        };
        let polled = match stopping {
            Some(end) => match tokio::time::timeout_at(end.into(), event_loop.poll(config)).await {
                Ok(r) => r,
                Err(_) => break,
            },
            None => tokio::select! {
                r = event_loop.poll(config) => r,
                // Told to stop: drain (above) from the next round.
                _ = shared.wake.notified() => continue,
            },
        };
        let notes = std::mem::take(&mut shared.lock().notes);
        for e in notes {
            on_event(e);
        }
        match polled {
            Ok(Happened::Connected {
                receive_max,
                max_packet,
            }) => {
                let mut q = shared.lock();
                q.connected = true;
                q.window = usize::from(config.inflight.max(1))
                    .min(receive_max.map_or(usize::MAX, usize::from).max(1));
                q.broker_max_packet = max_packet;
                let dropped = std::mem::take(&mut q.dropped_unreported);
                shared.pump(&mut q);
                drop(q);
                on_event(Event::Connected {
                    again: connected_once,
                    attempts,
                    dropped,
                });
                connected_once = true;
                attempts = 0;
                backoff = MIN_BACKOFF;
            }
            Ok(Happened::Written(pkid)) => {
                let mut q = shared.lock();
                if let Some(i) = q.sent.iter().position(|s| s.written.is_none()) {
                    if pkid == 0 {
                        // QoS 0: written is all the broker will say.
                        q.sent.remove(i);
                        q.published += 1;
                    } else {
                        q.sent[i].written = Some(pkid);
                    }
                }
                shared.pump(&mut q);
            }
            Ok(Happened::Acked { pkid, refused }) => {
                let mut q = shared.lock();
                if let Some(i) = q.sent.iter().position(|s| s.written == Some(pkid)) {
                    q.sent.remove(i);
                    match refused {
                        None => q.published += 1,
                        Some(why) => {
                            q.rejected += 1;
                            let total = q.rejected;
                            q.notes.push(Event::Rejected {
                                why: format!("the broker refused a message: {why}"),
                                total,
                            });
                        }
                    }
                }
                shared.pump(&mut q);
            }
            Ok(Happened::Disconnected | Happened::Other) => {}
            Err(failure) => {
                event_loop.forget();
                let was_connected = {
                    let mut q = shared.lock();
                    let was = std::mem::replace(&mut q.connected, false);
                    // What the broker did not acknowledge goes back to the front, in order; the
                    // queue's bound then drops the oldest of it all, counted.
                    let sent: Vec<Sent> = q.sent.drain(..).collect();
                    for s in sent.into_iter().rev() {
                        q.waiting.push_front(s.message);
                    }
                    let first = q.dropped_unreported == 0;
                    let mut trimmed = false;
                    while q.waiting.len() > config.max_queued.max(1) {
                        q.waiting.pop_front();
                        q.dropped += 1;
                        q.dropped_unreported += 1;
                        trimmed = true;
                    }
                    if first && trimmed {
                        q.notes.push(Event::DroppingOldest);
                    }
                    was
                };
                match failure {
                    Failure::Fatal(error) => {
                        {
                            let mut q = shared.lock();
                            q.failed = true;
                            let n = q.waiting.len() as u64;
                            q.dropped += n;
                            q.waiting.clear();
                        }
                        on_event(Event::Refused(error));
                        return;
                    }
                    Failure::Retry(error) if was_connected => {
                        // Reconnect at once; the attempts that fail then back off.
                        on_event(Event::Lost(error));
                    }
                    Failure::Retry(error) => {
                        attempts += 1;
                        on_event(if attempts == 1 {
                            Event::Unreachable {
                                error,
                                retry_in: backoff,
                            }
                        } else {
                            Event::Retrying {
                                attempts,
                                error,
                                retry_in: backoff,
                            }
                        });
                        nap(shared, backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
    }
    // Goodbye (errors do not matter any more), bounded.
    if shared.lock().connected {
        shared.sender.try_disconnect();
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, async {
            loop {
                match event_loop.poll(config).await {
                    Ok(Happened::Disconnected) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        shared.lock().connected = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port()
    }

    fn config(port: u16, max_queued: usize) -> Config {
        Config {
            address: format!("127.0.0.1:{port}"),
            client_id: "test".into(),
            username: None,
            password: None,
            keep_alive_s: 30,
            tls: None,
            protocol: Protocol::V311,
            topic: "t".into(),
            qos: 1,
            max_queued,
            inflight: 10,
            max_packet_size: 1000,
            max_incoming_packet_size: 1000,
        }
    }

    #[test]
    fn addresses_split_or_say_what_is_wrong() {
        assert_eq!(split_address("127.0.0.1:1883"), Ok(("127.0.0.1", 1883)));
        assert_eq!(
            split_address("broker.local:8883"),
            Ok(("broker.local", 8883))
        );
        assert_eq!(split_address("[::1]:1883"), Ok(("::1", 1883)));
        for bad in [
            "",
            "localhost",
            ":1883",
            "host:",
            "host:0",
            "host:99999",
            "host:x",
        ] {
            let e = split_address(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn without_a_broker_it_queues_drops_the_oldest_and_backs_off() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let e = events.clone();
        let p = Publisher::start(config(closed_port(), 3), move |ev| {
            e.lock().unwrap().push(ev)
        })
        .unwrap();
        // Bound against a hang: the first attempt fails at once on loopback.
        let deadline = Instant::now() + Duration::from_secs(30);
        while events.lock().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let pushed: Vec<Pushed> = (0..100u8).map(|i| p.push(vec![i], Vec::new())).collect();
        assert_eq!(pushed[..3], [Pushed::Queued; 3]);
        assert_eq!(pushed[3], Pushed::DroppedOldest { first: true });
        assert_eq!(pushed[4], Pushed::DroppedOldest { first: false });
        assert_eq!((p.queued(), p.dropped(), p.published()), (3, 97, 0));
        let counts = p.stop(Duration::ZERO);
        // The 3 still queued at the end count as dropped too.
        assert_eq!(
            counts,
            Counts {
                published: 0,
                dropped: 100,
                rejected: 0,
                left: 3
            }
        );
        let events = events.lock().unwrap();
        assert!(
            matches!(events[0], Event::Unreachable { retry_in, .. } if retry_in == MIN_BACKOFF),
            "{events:?}"
        );
        assert!(events.iter().all(|e| !matches!(e, Event::Connected { .. })));
    }

    #[test]
    fn new_messages_do_not_cut_the_back_off_short() {
        let attempts = Arc::new(Mutex::new(0u32));
        let a = attempts.clone();
        let p =
            Publisher::start(config(closed_port(), 100), move |_| *a.lock().unwrap() += 1).unwrap();
        // 20 messages over about 0.4 s: the back-off (0.25 s, 0.5 s, 1 s …) allows 2 or 3
        // attempts in that time, whatever arrives; one attempt per message would be 20.
        for i in 0..20u8 {
            p.push(vec![i], Vec::new());
            std::thread::sleep(Duration::from_millis(20));
        }
        p.stop(Duration::ZERO);
        let n = *attempts.lock().unwrap();
        assert!(
            (1..10).contains(&n),
            "{n} connection attempts for 20 messages"
        );
    }

    #[test]
    fn an_oversized_message_is_rejected_and_counted_never_queued() {
        let p = Publisher::start(config(closed_port(), 10), |_| {}).unwrap();
        assert_eq!(p.push(vec![0; 100], Vec::new()), Pushed::Queued);
        // 1000 bytes of payload make a packet over max_packet_size = 1000.
        assert_eq!(
            p.push(vec![0; 1000], Vec::new()),
            Pushed::Rejected {
                size: 5 + 2 + 1 + 2 + 1000,
                max: 1000,
                total: 1
            }
        );
        assert_eq!((p.queued(), p.rejected(), p.dropped()), (1, 1, 0));
        p.stop(Duration::ZERO);
    }
}
