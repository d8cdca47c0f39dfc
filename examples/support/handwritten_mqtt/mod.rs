// SPDX-License-Identifier: MPL-2.0
//! The hand-written MQTT 3.1.1 client that `faceposepublish` used up to commit 1a23ae1 (packets,
//! one blocking session, a publisher thread that waits for each PUBACK before the next PUBLISH),
//! moved here unchanged but for its tests: `examples/bench_publish.rs` measures it side by side
//! with the rumqttc publisher of `src/mqtt/`. Nothing in the plugin uses it.

#![allow(dead_code)]

pub mod connection;
pub mod packet;
pub mod publisher;
