//! A real Kafka-protocol broker for a test: installed by `scripts/kafka-brokers` (PyPI, a
//! venv under the user cache), started on a free port with in-memory storage, stopped
//! when dropped. Two independent implementations: tansu and noida-db.

#![allow(dead_code)]

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tansu,
    Noida,
}

/// A running broker process.
pub struct Broker {
    pub kind: Kind,
    pub bootstrap: String,
    child: Child,
    _data: tempfile::TempDir,
}

/// Paths printed by the setup script (which installs on first use).
fn binary(kind: Kind) -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-brokers");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/kafka-brokers");
    assert!(output.status.success(), "scripts/kafka-brokers failed");
    let name = match kind {
        Kind::Tansu => "tansu=",
        Kind::Noida => "noida=",
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(PathBuf::from)
        .expect("broker binary path")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Broker {
    pub fn start(kind: Kind) -> Broker {
        let binary = binary(kind);
        let port = free_port();
        let data = tempfile::tempdir().expect("broker data dir");
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(&binary);
        match kind {
            Kind::Tansu => command.args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ]),
            Kind::Noida => command
                .args([
                    "start",
                    "--only",
                    "kafka",
                    "--host",
                    "127.0.0.1",
                    "--kafka-port",
                    &port.to_string(),
                    "--data-dir",
                ])
                .arg(data.path()),
        };
        let log = std::fs::File::create(data.path().join("broker.log")).expect("log file");
        let child = command
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let broker = Broker {
            kind,
            bootstrap: format!("127.0.0.1:{port}"),
            child,
            _data: data,
        };
        broker.wait_listening(port);
        broker
    }

    fn wait_listening(&self, port: u16) {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{:?} did not listen on {port}",
                self.kind
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The broker's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._data.path().join("broker.log")).unwrap_or_default()
    }

    pub fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }

    /// Creates topics with the given partition counts.
    pub async fn create_topics(&self, topics: &[(&str, i32)]) {
        let admin: AdminClient<DefaultClientContext> =
            self.client().create().expect("admin client");
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin
            .create_topics(&new, &options)
            .await
            .expect("create topics")
        {
            if let Err((topic, err)) = result {
                panic!("creating {topic} on {:?}: {err}\n{}", self.kind, self.log());
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
