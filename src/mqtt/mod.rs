// SPDX-License-Identifier: MPL-2.0
//! A small MQTT 3.1.1 client, GStreamer-free: the packets ([`packet`]), one session over TCP or
//! TLS ([`connection`], [`tls`]) and a publisher thread that queues while the broker is away
//! ([`publisher`]). `faceposepublish` and the `mqtt_faces` example use it.

pub mod connection;
pub mod packet;
pub mod publisher;
pub mod tls;

pub use connection::{ConnectError, Connection, Options};
pub use publisher::{Config, Event, Publisher, Pushed};
pub use tls::TlsFiles;
