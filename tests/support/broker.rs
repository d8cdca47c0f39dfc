// SPDX-License-Identifier: MPL-2.0
//! A real Mosquitto broker for tests: started on a free loopback port with a generated
//! configuration (persistence on, optionally a password file or TLS), stopped and restarted on
//! demand, killed when dropped. And a subscriber (rumqttc) that reconnects and collects what
//! arrives.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS, RecvTimeoutError};

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

    /// Kills the broker (SIGKILL: nothing saved, every session and queued message of it lost).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
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
/// when the broker goes away (and subscribes again when the broker lost the session), and the
/// broker keeps what arrives meanwhile.
pub struct Subscriber {
    pub messages: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Returns once subscribed.
    pub fn start(address: &str, filter: &str, client_id: &str) -> Subscriber {
        let (host, port) = address.rsplit_once(':').expect("host:port");
        let mut options = MqttOptions::new(client_id, host, port.parse().expect("a port"));
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(1 << 24, 1 << 24);
        let (client, mut connection) = Client::new(options, 64);
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .expect("subscribes");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match connection.recv_timeout(Duration::from_millis(200)) {
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
                Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Err(e)) => panic!("the subscriber cannot connect to {address}: {e}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the subscriber's event loop ended"),
            }
            assert!(Instant::now() < deadline, "no SUBACK from {address}");
        }
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (messages.clone(), stop.clone());
        let filter = filter.to_owned();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match connection.recv_timeout(Duration::from_millis(200)) {
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => m.lock().unwrap().push((
                        p.topic.clone(),
                        String::from_utf8(p.payload.to_vec()).expect("UTF-8 JSON"),
                    )),
                    Ok(Ok(Event::Incoming(Packet::ConnAck(c)))) if !c.session_present => {
                        let _ = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                    }
                    Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
                    // The broker is away: rumqttc reconnects on the next call.
                    Ok(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            let _ = client.try_disconnect();
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
