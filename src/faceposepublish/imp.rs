// SPDX-License-Identifier: MPL-2.0
//! # faceposepublish
//!
//! Publishes the faces of each frame (the `FacePoseMeta` that `faceposeestimator` attaches) to an
//! MQTT broker as one JSON message: the JSON Lines object plus `source` and the frame's
//! timestamps (under MQTT 5 also as user properties). Buffers pass through untouched and are never
//! held up by the network: a thread owns the connection (rumqttc), keeps up to `max-queued`
//! messages while the broker is away (dropping the oldest beyond that, with a warning that counts
//! them), sends up to `inflight` QoS 1 messages ahead of their acknowledgements, sends again what
//! a lost connection left unacknowledged, and reconnects with back-off. Each attention episode or
//! track that ended on a frame (`attention-events` of the meta) also goes, as one message of its
//! own, to `<topic>/attention`, in order with the frames.
//!
//! The streaming thread never waits for the broker: per buffer it builds the JSON and takes a
//! mutex for as long as queueing it takes (microseconds). Stopping waits at most `DRAIN_TIMEOUT`
//! plus half a second (the DISCONNECT) for what is still queued, and only while connected.
//!
//! ```text
//! gst-launch-1.0 v4l2src ! videoconvert ! faceposeestimator ! faceposepublish address=127.0.0.1:1883 topic=facepose/cam1 ! fakesink
//! ```
//!
//! This file is GObject glue only: the client is `crate::mqtt`, the message `crate::json`.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::Protocol;
use crate::mqtt::{self, Event, Publisher, Pushed};
use crate::{json, meta};

const DEFAULT_ADDRESS: &str = "127.0.0.1:1883";
const DEFAULT_TOPIC: &str = "facepose";
/// Ended attention episodes and tracks go to `<topic>/attention`.
const ATTENTION_SUBTOPIC: &str = "attention";
const DEFAULT_QOS: u32 = 1;
const DEFAULT_MAX_QUEUED: u32 = 1000;
const MAX_MAX_QUEUED: u32 = 1_000_000;
const DEFAULT_KEEP_ALIVE: u32 = 30;
const DEFAULT_PROTOCOL: Protocol = Protocol::V311;
/// QoS 1 messages on the way before the first acknowledgement (rumqttc's default too).
const DEFAULT_INFLIGHT: u32 = 100;
/// One face with its 468 landmarks is about 14 KB of JSON; 4 MiB holds a few hundred.
const DEFAULT_MAX_PACKET_SIZE: u32 = 4 * 1024 * 1024;
/// The broker only sends acknowledgements and CONNACK to a publisher: 64 KiB is plenty, and what
/// a rogue broker can make the element allocate.
const DEFAULT_MAX_INCOMING_PACKET_SIZE: u32 = 64 * 1024;
/// A rejected (oversized) message is warned about on the first and then every this many.
const REJECTED_WARNING_EVERY: u64 = 100;
/// How long stopping may spend sending what is still queued.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "faceposepublish",
        gst::DebugColorFlags::empty(),
        Some("Publishes faces to an MQTT broker"),
    )
});

#[derive(Debug, Clone)]
struct Settings {
    address: String,
    topic: String,
    client_id: Option<String>,
    source: Option<String>,
    qos: u32,
    username: Option<String>,
    password: Option<String>,
    tls_ca: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    max_queued: u32,
    keep_alive: u32,
    protocol: Protocol,
    inflight: u32,
    max_packet_size: u32,
    max_incoming_packet_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            address: DEFAULT_ADDRESS.into(),
            topic: DEFAULT_TOPIC.into(),
            client_id: None,
            source: None,
            qos: DEFAULT_QOS,
            username: None,
            password: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            max_queued: DEFAULT_MAX_QUEUED,
            keep_alive: DEFAULT_KEEP_ALIVE,
            protocol: DEFAULT_PROTOCOL,
            inflight: DEFAULT_INFLIGHT,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            max_incoming_packet_size: DEFAULT_MAX_INCOMING_PACKET_SIZE,
        }
    }
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// A client id no other publisher of this process uses (a broker disconnects the older of two
/// clients with the same id): process id, element name and a counter.
fn default_client_id(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("facepose-{}-{name}-{n}", std::process::id())
}

impl Settings {
    /// The publisher's configuration, or what is wrong, naming the property or file.
    fn config(&self, name: &str) -> Result<mqtt::Config, String> {
        mqtt::publisher::split_address(&self.address)
            .map_err(|e| format!("property address: {e}"))?;
        if self.topic.is_empty() || self.topic.contains(['+', '#', '\0']) {
            return Err(format!(
                "property topic: '{}' is not a topic to publish to (not empty, no + or #)",
                self.topic
            ));
        }
        let tls = match (set(&self.tls_ca), set(&self.tls_cert), set(&self.tls_key)) {
            (None, None, None) => None,
            (None, _, _) => {
                return Err("property tls-ca: needed when tls-cert or tls-key is set".into());
            }
            (Some(_), Some(_), None) | (Some(_), None, Some(_)) => {
                return Err("properties tls-cert and tls-key: set both or neither".into());
            }
            (Some(ca), cert, key) => Some(mqtt::Tls {
                config: mqtt::tls::client_config(&mqtt::TlsFiles {
                    ca: PathBuf::from(ca),
                    client: cert
                        .zip(key)
                        .map(|(c, k)| (PathBuf::from(c), PathBuf::from(k))),
                })?,
                ca_file: PathBuf::from(ca),
            }),
        };
        if set(&self.password).is_some() && set(&self.username).is_none() {
            return Err("property password: needs a username with it".into());
        }
        Ok(mqtt::Config {
            address: self.address.clone(),
            client_id: set(&self.client_id)
                .map(str::to_owned)
                .unwrap_or_else(|| default_client_id(name)),
            username: set(&self.username).map(str::to_owned),
            password: set(&self.password).map(str::to_owned),
            keep_alive_s: self.keep_alive as u16,
            tls,
            protocol: match self.protocol {
                Protocol::V311 => mqtt::Protocol::V311,
                Protocol::V5 => mqtt::Protocol::V5,
            },
            topic: self.topic.clone(),
            qos: self.qos as u8,
            max_queued: self.max_queued as usize,
            inflight: self.inflight as u16,
            max_packet_size: self.max_packet_size as usize,
            max_incoming_packet_size: self.max_incoming_packet_size as usize,
        })
    }
}

struct State {
    publisher: Publisher,
    source: String,
    protocol: Protocol,
    warned_no_meta: bool,
}

#[derive(Default)]
pub struct FacePosePublish {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// Counts of the last run, kept for the read-only properties after stop.
    last_counts: Mutex<mqtt::Counts>,
}

impl FacePosePublish {
    fn counts(&self) -> mqtt::Counts {
        match self.state.lock().unwrap().as_ref() {
            Some(s) => mqtt::Counts {
                published: s.publisher.published(),
                dropped: s.publisher.dropped(),
                rejected: s.publisher.rejected(),
                left: 0,
            },
            None => *self.last_counts.lock().unwrap(),
        }
    }

    /// The first drop of an outage.
    fn warn_dropping(&self) {
        let max_queued = self.settings.lock().unwrap().max_queued;
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Write,
            ("The MQTT broker is away and max-queued ({max_queued}) messages are waiting: dropping the oldest (the count follows when it is back; see the dropped property)")
        );
    }

    /// Warns of a message that was not sent (the first, then every `REJECTED_WARNING_EVERY`).
    fn warn_rejected(&self, why: &str, total: u64) {
        if total == 1 || total.is_multiple_of(REJECTED_WARNING_EVERY) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ("MQTT message not sent: {why} ({total} rejected in all; see the rejected property)")
            );
        } else {
            gst::debug!(
                CAT,
                imp = self,
                "MQTT message not sent: {why} ({total} in all)"
            );
        }
    }

    /// Tells the application what the publisher thread saw.
    fn report(&self, address: &str, event: Event) {
        match event {
            Event::Connected { again: false, .. } => {
                gst::info!(CAT, imp = self, "Connected to the MQTT broker at {address}");
            }
            Event::Connected {
                again: true,
                attempts,
                dropped,
            } => {
                let total = self.counts().dropped;
                if dropped > 0 {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Write,
                        ("Reconnected to the MQTT broker at {address} after {attempts} attempt(s); {dropped} message(s) were dropped while it was away ({total} in all)")
                    );
                } else {
                    gst::element_imp_info!(
                        self,
                        gst::ResourceError::Write,
                        ("Reconnected to the MQTT broker at {address} after {attempts} attempt(s); no message was lost")
                    );
                }
            }
            Event::Unreachable { error, retry_in } => gst::element_imp_warning!(
                self,
                gst::ResourceError::OpenWrite,
                ("Cannot reach the MQTT broker at {address}: {error}; retrying with back-off (first in {retry_in:?}) and keeping up to max-queued messages")
            ),
            Event::Retrying {
                attempts,
                error,
                retry_in,
            } => gst::debug!(
                CAT,
                imp = self,
                "Attempt {attempts} to reach {address} failed: {error}; next in {retry_in:?}"
            ),
            Event::Lost(error) => gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ("Lost the connection to the MQTT broker at {address}: {error}; reconnecting")
            ),
            Event::Refused(error) => gst::element_imp_error!(
                self,
                gst::ResourceError::OpenWrite,
                ("MQTT broker at {address}: {error}"),
                [
                    "Check the username, password, client-id, tls-* and max-incoming-packet-size properties; nothing more is published"
                ]
            ),
            Event::Rejected { why, total } => self.warn_rejected(&why, total),
            Event::DroppingOldest => self.warn_dropping(),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FacePosePublish {
    const NAME: &'static str = "GstFacePosePublish";
    type Type = super::FacePosePublish;
    type ParentType = gst_base::BaseTransform;
}

fn string_property(name: &'static str, nick: &'static str, blurb: &'static str) -> glib::ParamSpec {
    glib::ParamSpecString::builder(name)
        .nick(nick)
        .blurb(blurb)
        .mutable_ready()
        .build()
}

impl ObjectImpl for FacePosePublish {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("address")
                    .nick("Address")
                    .blurb("The MQTT broker as host:port")
                    .default_value(Some(DEFAULT_ADDRESS))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("topic")
                    .nick("Topic")
                    .blurb("Topic the messages are published to")
                    .default_value(Some(DEFAULT_TOPIC))
                    .mutable_ready()
                    .build(),
                string_property("client-id", "Client id", "MQTT client identifier (default: facepose-<process id>-<element name>-<n>, unique in the process)"),
                string_property("source", "Source", "The source name every message carries (default: the element's name)"),
                glib::ParamSpecUInt::builder("qos")
                    .nick("QoS")
                    .blurb("MQTT quality of service: 0 (at most once) or 1 (at least once, each message acknowledged)")
                    .maximum(1)
                    .default_value(DEFAULT_QOS)
                    .mutable_ready()
                    .build(),
                string_property("username", "Username", "User name for the broker (optional)"),
                glib::ParamSpecString::builder("password")
                    .nick("Password")
                    .blurb("Password for the broker (optional; needs username)")
                    .write_only()
                    .mutable_ready()
                    .build(),
                string_property("tls-ca", "TLS CA file", "PEM file of the certificate authorities the broker's certificate must chain to; setting it turns TLS on"),
                string_property("tls-cert", "TLS client certificate", "PEM file of the client certificate chain (optional; with tls-key)"),
                string_property("tls-key", "TLS client key", "PEM file of the client certificate's private key (optional; with tls-cert)"),
                glib::ParamSpecUInt::builder("max-queued")
                    .nick("Max queued")
                    .blurb("Messages kept while the broker is away; beyond that the oldest are dropped")
                    .minimum(1)
                    .maximum(MAX_MAX_QUEUED)
                    .default_value(DEFAULT_MAX_QUEUED)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("keep-alive")
                    .nick("Keep alive")
                    .blurb("MQTT keep-alive interval in seconds (a ping goes out every interval; one still unanswered at the next breaks the connection, which is then made again)")
                    .minimum(2)
                    .maximum(u16::MAX as u32)
                    .default_value(DEFAULT_KEEP_ALIVE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("protocol", DEFAULT_PROTOCOL)
                    .nick("Protocol")
                    .blurb("MQTT version: 3.1.1, or 5 (then the source and the frame's pts also go as user properties)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("inflight")
                    .nick("In flight")
                    .blurb("QoS 1 messages sent before their acknowledgement comes back (the window; under MQTT 5 the broker's receive maximum may lower it)")
                    .minimum(1)
                    .maximum(u16::MAX as u32)
                    .default_value(DEFAULT_INFLIGHT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-packet-size")
                    .nick("Max packet size")
                    .blurb("Largest MQTT packet sent, in bytes; a frame's message that would be larger is not sent (warned, counted in rejected)")
                    .minimum(128)
                    .maximum(mqtt::publisher::MQTT_MAX_PACKET.min(u32::MAX as usize) as u32)
                    .default_value(DEFAULT_MAX_PACKET_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-incoming-packet-size")
                    .nick("Max incoming packet size")
                    .blurb("Largest MQTT packet accepted from the broker, in bytes; a larger one is an error (nothing of it is buffered)")
                    .minimum(128)
                    .maximum(mqtt::publisher::MQTT_MAX_PACKET.min(u32::MAX as usize) as u32)
                    .default_value(DEFAULT_MAX_INCOMING_PACKET_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("published")
                    .nick("Published")
                    .blurb("Messages the broker took (acknowledged at QoS 1)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("queued")
                    .nick("Queued")
                    .blurb("Messages waiting to be sent, or sent and not acknowledged yet")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("dropped")
                    .nick("Dropped")
                    .blurb("Messages dropped: max-queued were waiting while the broker was away, they were still queued when the element stopped, or the broker had refused the connection (error posted)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("rejected")
                    .nick("Rejected")
                    .blurb("Messages not sent: larger than max-packet-size (or the broker's MQTT 5 maximum), or refused in the broker's MQTT 5 acknowledgement")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let text = || {
            value
                .get::<Option<String>>()
                .expect("type checked upstream")
        };
        match pspec.name() {
            "address" => s.address = text().unwrap_or_else(|| DEFAULT_ADDRESS.into()),
            "topic" => s.topic = text().unwrap_or_else(|| DEFAULT_TOPIC.into()),
            "client-id" => s.client_id = text(),
            "source" => s.source = text(),
            "qos" => s.qos = value.get().expect("type checked upstream"),
            "username" => s.username = text(),
            "password" => s.password = text(),
            "tls-ca" => s.tls_ca = text(),
            "tls-cert" => s.tls_cert = text(),
            "tls-key" => s.tls_key = text(),
            "max-queued" => s.max_queued = value.get().expect("type checked upstream"),
            "keep-alive" => s.keep_alive = value.get().expect("type checked upstream"),
            "protocol" => s.protocol = value.get().expect("type checked upstream"),
            "inflight" => s.inflight = value.get().expect("type checked upstream"),
            "max-packet-size" => s.max_packet_size = value.get().expect("type checked upstream"),
            "max-incoming-packet-size" => {
                s.max_incoming_packet_size = value.get().expect("type checked upstream")
            }
            _ => unimplemented!(),
        }
        gst::info!(CAT, imp = self, "{} set", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "published" => return self.counts().published.to_value(),
            "dropped" => return self.counts().dropped.to_value(),
            "rejected" => return self.counts().rejected.to_value(),
            "queued" => {
                let state = self.state.lock().unwrap();
                let queued = state.as_ref().map_or(0, |s| s.publisher.queued());
                return (queued as u32).to_value();
            }
            _ => {}
        }
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "address" => s.address.to_value(),
            "topic" => s.topic.to_value(),
            "client-id" => s.client_id.to_value(),
            "source" => s.source.to_value(),
            "qos" => s.qos.to_value(),
            "username" => s.username.to_value(),
            "password" => None::<String>.to_value(),
            "tls-ca" => s.tls_ca.to_value(),
            "tls-cert" => s.tls_cert.to_value(),
            "tls-key" => s.tls_key.to_value(),
            "max-queued" => s.max_queued.to_value(),
            "keep-alive" => s.keep_alive.to_value(),
            "protocol" => s.protocol.to_value(),
            "inflight" => s.inflight.to_value(),
            "max-packet-size" => s.max_packet_size.to_value(),
            "max-incoming-packet-size" => s.max_incoming_packet_size.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for FacePosePublish {}

impl ElementImpl for FacePosePublish {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face pose MQTT publisher",
                "Filter/Analyzer/Video",
                "Publishes each frame's faces (from faceposeestimator) as a JSON message to an MQTT broker",
                "gst-plugin-facepose developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for FacePosePublish {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let name = self.obj().name().to_string();
        let config = settings
            .config(&name)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        let address = settings.address.clone();
        let weak = self.obj().downgrade();
        let publisher = Publisher::start(config, move |event| {
            if let Some(obj) = weak.upgrade() {
                obj.imp().report(&address, event);
            }
        })
        .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        *self.state.lock().unwrap() = Some(State {
            publisher,
            source: settings
                .source
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or(name),
            protocol: settings.protocol,
            warned_no_meta: false,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let state = self.state.lock().unwrap().take();
        if let Some(state) = state {
            let counts = state.publisher.stop(DRAIN_TIMEOUT);
            *self.last_counts.lock().unwrap() = counts;
            if counts.left > 0 {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "Stopping: {} MQTT message(s) the broker had not taken within {DRAIN_TIMEOUT:?} were dropped ({} dropped in all)",
                        counts.left,
                        counts.dropped
                    )
                );
            }
        }
        Ok(())
    }

    fn transform_ip_passthrough(
        &self,
        buffer: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(frame) = meta::frame_structure(buffer) else {
            let mut guard = self.state.lock().unwrap();
            let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            if !std::mem::replace(&mut state.warned_no_meta, true) {
                drop(guard);
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    ("A buffer without FacePoseMeta: nothing to publish (put faceposepublish after faceposeestimator)")
                );
            }
            return Ok(gst::FlowSuccess::Ok);
        };
        let (width, height, faces) = meta::faces_from_frame(&frame);
        let events = meta::events_from_frame(&frame);
        let segment = self.obj().segment();
        let pts = buffer.pts();
        let (running_time, stream_time) = match segment.downcast_ref::<gst::ClockTime>() {
            Some(s) => (s.to_running_time(pts), s.to_stream_time(pts)),
            None => (None, None),
        };
        let times = json::FrameTimes {
            pts: pts.map(|t| t.nseconds()),
            dts: buffer.dts().map(|t| t.nseconds()),
            duration: buffer.duration().map(|t| t.nseconds()),
            running_time: running_time.map(|t| t.nseconds()),
            stream_time: stream_time.map(|t| t.nseconds()),
        };
        let guard = self.state.lock().unwrap();
        let state = guard.as_ref().ok_or(gst::FlowError::Flushing)?;
        let message =
            json::published_message(&state.source, &times, width, height, &faces, &events);
        let properties = match state.protocol {
            Protocol::V311 => Vec::new(),
            Protocol::V5 => {
                let mut p = vec![("source".to_owned(), state.source.clone())];
                if let Some(pts) = times.pts {
                    p.push(("pts".to_owned(), pts.to_string()));
                }
                p
            }
        };
        let mut pushed = vec![
            state
                .publisher
                .push(message.into_bytes(), properties.clone()),
        ];
        // Each ended attention episode or track, also on its own sub-topic.
        for e in &events {
            let message = json::attention_message(&state.source, times.pts, e);
            pushed.push(state.publisher.push_to(
                ATTENTION_SUBTOPIC,
                message.into_bytes(),
                properties.clone(),
            ));
        }
        drop(guard);
        for p in pushed {
            self.report_pushed(p);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

impl FacePosePublish {
    /// Warns about a message the queue dropped or rejected.
    fn report_pushed(&self, pushed: Pushed) {
        match pushed {
            Pushed::DroppedOldest { first: true } => self.warn_dropping(),
            Pushed::Rejected { size, max, total } => self.warn_rejected(
                &format!(
                    "a message makes a packet of {size} bytes, over max-packet-size ({max} bytes)"
                ),
                total,
            ),
            Pushed::Queued | Pushed::DroppedOldest { .. } => {}
            Pushed::Discarded => {
                gst::trace!(
                    CAT,
                    imp = self,
                    "The publisher gave up (error posted); message dropped"
                )
            }
        }
    }
}
