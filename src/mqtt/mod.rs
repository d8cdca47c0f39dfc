// SPDX-License-Identifier: MPL-2.0
//! The MQTT side of `faceposepublish`, GStreamer-free: a publisher over the rumqttc crate
//! (MQTT 3.1.1 or 5) that queues while the broker is away ([`publisher`]), and its TLS
//! configuration from PEM files (rustls with the ring provider, [`tls`]).

pub mod publisher;
pub mod tls;

pub use publisher::{Config, Counts, Event, Protocol, Publisher, Pushed, Tls};
pub use tls::TlsFiles;
