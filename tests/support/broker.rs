// SPDX-License-Identifier: MPL-2.0
//! A real Mosquitto broker for tests: started on a free loopback port with a generated
//! configuration (persistence on, optionally a password file or TLS), stopped and restarted on
//! demand, killed when dropped. And a subscriber that reconnects and collects what arrives.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstfacepose::mqtt::{Connection, Options};

/// The longest the broker may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `mosquitto` is here; else why the test cannot run. Under CI=true a missing broker
/// fails the test instead.
pub fn mosquitto_or_skip(test: &str) -> bool {
    let found = Command::new("mosquitto")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if found {
        return true;
    }
    let why =
        "mosquitto is not installed (apt-get install mosquitto mosquitto-clients, or make system)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// What the broker asks of clients.
#[derive(Clone, Default)]
pub enum Access {
    #[default]
    Anonymous,
    /// Only this user, with this password.
    Password(String, String),
    /// TLS with these PEM files: (ca, server certificate, server key).
    Tls(PathBuf, PathBuf, PathBuf),
}

pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    pub fn start(dir: &Path, access: Access) -> Broker {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence true\npersistence_location {}/\n\
             max_queued_messages 100000\nuser root\nlog_dest file {}/mosquitto.log\n",
            dir.display(),
            dir.display()
        );
        match &access {
            Access::Anonymous => conf.push_str("allow_anonymous true\n"),
            Access::Password(user, password) => {
                let file = dir.join("passwords");
                let ok = Command::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&file)
                    .args([user, password])
                    .status()
                    .expect("mosquitto_passwd (package mosquitto)");
                assert!(ok.success(), "mosquitto_passwd failed");
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
            Access::Tls(ca, cert, key) => conf.push_str(&format!(
                "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\n",
                ca.display(),
                cert.display(),
                key.display()
            )),
        }
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
        let mut b = Broker {
            port,
            dir: dir.to_owned(),
            child: None,
        };
        b.restart();
        b
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker again (same port, same persisted sessions) and waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is running");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "mosquitto exited ({status}): {}",
                    std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto does not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the broker as a service manager would (SIGTERM: it saves its sessions).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Collects the messages of a topic filter at QoS 1 with a persistent session: it reconnects
/// when the broker goes away, and the broker keeps what arrives meanwhile.
pub struct Subscriber {
    pub messages: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Returns once subscribed.
    pub fn start(address: &str, filter: &str, client_id: &str) -> Subscriber {
        let options = Options {
            address: address.into(),
            client_id: client_id.into(),
            username: None,
            password: None,
            // No keep-alive: the subscriber only reads.
            keep_alive_s: 0,
            clean_session: false,
            tls: None,
        };
        let mut first = Connection::open(&options).expect("subscriber connects");
        first.subscribe(filter, 1).expect("subscribes");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (messages.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut conn = Some(first);
            while !s.load(Ordering::SeqCst) {
                let Some(c) = conn.as_mut() else {
                    std::thread::sleep(Duration::from_millis(100));
                    conn = Connection::open(&options).ok();
                    continue;
                };
                let _ = c.set_timeout(Some(Duration::from_millis(200)));
                match c.receive() {
                    Ok((topic, payload)) => m
                        .lock()
                        .unwrap()
                        .push((topic, String::from_utf8(payload).expect("UTF-8 JSON"))),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => conn = None,
                }
            }
            if let Some(c) = conn {
                c.disconnect();
            }
        });
        Subscriber {
            messages,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until `n` messages arrived (or the bound passed), and returns them all.
    pub fn wait_for(&self, n: usize, bound: Duration) -> Vec<(String, String)> {
        let deadline = Instant::now() + bound;
        while self.messages.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.messages.lock().unwrap().clone()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
