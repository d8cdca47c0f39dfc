// SPDX-License-Identifier: MPL-2.0
//! A publisher thread that owns the broker connection. Callers hand it messages without ever
//! waiting: while the broker is away it keeps up to `max_queued` of them and drops the oldest
//! beyond that, and it reconnects with back-off, telling the caller what happens through events.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::connection::{ConnectError, Connection, Options};

/// The first wait before reconnecting; it doubles up to `MAX_BACKOFF`.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

#[derive(Debug, Clone)]
pub struct Config {
    pub options: Options,
    pub topic: String,
    /// 0 or 1.
    pub qos: u8,
    /// Messages kept while the broker is away (at least 1).
    pub max_queued: usize,
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
    /// A working connection broke; the message in flight is kept and sent again.
    Lost(String),
    /// The broker refused us (credentials, client id) or the settings are unusable: the
    /// publisher gives up; messages pushed from now on are discarded.
    Refused(String),
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
    /// The publisher has given up (see `Event::Refused`).
    Discarded,
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Vec<u8>>,
    stopping: Option<Instant>,
    failed: bool,
    dropped: u64,
    dropped_unreported: u64,
    published: u64,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

pub struct Publisher {
    shared: Arc<Shared>,
    max_queued: usize,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    /// Starts the thread; `on_event` runs on it.
    pub fn start(
        config: Config,
        on_event: impl Fn(Event) + Send + 'static,
    ) -> std::io::Result<Publisher> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let max_queued = config.max_queued.max(1);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("facepose-mqtt".into())
            .spawn(move || run(&s, &config, &on_event))?;
        Ok(Publisher {
            shared,
            max_queued,
            thread: Some(thread),
        })
    }

    /// Queues one message; never waits for the network.
    pub fn push(&self, message: Vec<u8>) -> Pushed {
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if q.failed {
            return Pushed::Discarded;
        }
        let mut pushed = Pushed::Queued;
        while q.messages.len() >= self.max_queued {
            q.messages.pop_front();
            q.dropped += 1;
            q.dropped_unreported += 1;
            pushed = Pushed::DroppedOldest {
                first: q.dropped_unreported == 1,
            };
        }
        q.messages.push_back(message);
        drop(q);
        self.shared.wake.notify_all();
        pushed
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }

    /// Messages the broker took so far (acknowledged at QoS 1, written at QoS 0).
    pub fn published(&self) -> u64 {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .published
    }

    /// Messages waiting.
    pub fn queued(&self) -> usize {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .messages
            .len()
    }

    /// Stops the thread: while connected it first sends what is queued, for at most `drain`.
    /// Returns the final counts: (published, dropped).
    pub fn stop(mut self, drain: Duration) -> (u64, u64) {
        self.shutdown(drain);
        (self.published(), self.dropped())
    }

    fn shutdown(&mut self, drain: Duration) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stopping = Some(Instant::now() + drain);
        self.shared.wake.notify_all();
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

/// Waits `t` (new messages do not cut it short), or until told to stop.
fn nap(shared: &Shared, t: Duration) {
    let deadline = Instant::now() + t;
    let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
    while q.stopping.is_none() {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        q = shared
            .wake
            .wait_timeout(q, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

enum Next {
    Send(Vec<u8>),
    Ping,
    Stop,
}

/// The next message to send (waiting for one up to `idle`), a ping when none came, or the end.
fn next(shared: &Shared, idle: Duration) -> Next {
    let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
    let deadline = Instant::now() + idle;
    loop {
        if let Some(end) = q.stopping
            && (q.messages.is_empty() || Instant::now() >= end)
        {
            return Next::Stop;
        }
        if let Some(m) = q.messages.pop_front() {
            return Next::Send(m);
        }
        let now = Instant::now();
        if now >= deadline {
            return Next::Ping;
        }
        q = shared
            .wake
            .wait_timeout(q, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

fn run(shared: &Shared, config: &Config, on_event: &dyn Fn(Event)) {
    let idle = Duration::from_secs(u64::from(config.options.keep_alive_s.max(2)) / 2);
    let mut connected_once = false;
    let mut attempts = 0u32;
    let mut backoff = MIN_BACKOFF;
    // The message being sent: kept across a reconnection and sent again (marked as a resend).
    let mut in_flight: Option<Vec<u8>> = None;
    'session: loop {
        if shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stopping
            .is_some()
        {
            return;
        }
        let mut conn = match Connection::open(&config.options) {
            Ok(c) => c,
            Err(ConnectError::Io(e)) => {
                attempts += 1;
                let error = e.to_string();
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
                nap(shared, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(e) => {
                let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
                q.failed = true;
                q.dropped += q.messages.len() as u64;
                q.messages.clear();
                drop(q);
                on_event(Event::Refused(e.to_string()));
                return;
            }
        };
        let dropped = std::mem::take(
            &mut shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .dropped_unreported,
        );
        on_event(Event::Connected {
            again: connected_once,
            attempts,
            dropped,
        });
        connected_once = true;
        attempts = 0;
        backoff = MIN_BACKOFF;
        let mut dup = in_flight.is_some();
        loop {
            let message = match in_flight.take() {
                Some(m) => m,
                None => match next(shared, idle) {
                    Next::Send(m) => m,
                    Next::Ping => {
                        if let Err(e) = conn.ping() {
                            on_event(Event::Lost(format!("no answer to a ping: {e}")));
                            continue 'session;
                        }
                        continue;
                    }
                    Next::Stop => {
                        conn.disconnect();
                        return;
                    }
                },
            };
            match conn.publish(&config.topic, config.qos, dup, &message) {
                Ok(()) => {
                    shared
                        .queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .published += 1
                }
                Err(e) => {
                    // At QoS 0 a message lost with the connection stays lost.
                    if config.qos > 0 {
                        in_flight = Some(message);
                    }
                    on_event(Event::Lost(e.to_string()));
                    continue 'session;
                }
            }
            dup = false;
        }
    }
}
