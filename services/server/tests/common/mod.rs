//! The real `longview` binary as a user runs it: serve on free ports, read what it logs,
//! stop it with SIGTERM.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_longview");

pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LONGVIEW_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let root = longview_models::pull::default_models_root();
    let dir = longview_models::pull::default_model_dir(&root);
    longview_models::pull::DEFAULT_MODEL.ensure(&dir).unwrap();
    dir
}

/// A running `longview serve` and every line it has logged (JSON).
pub struct Served {
    pub child: Child,
    pub grpc: SocketAddr,
    pub metrics: Option<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
    /// The server's own stores, removed when it is dropped.
    _stores: tempfile::TempDir,
}

/// Starts `longview serve` on port 0 with `extra` flags and `env`, and returns once it has
/// logged "ready".
pub fn serve_with(extra: &[&str], env: &[(&str, &str)]) -> Served {
    let drain = if extra.contains(&"--drain-seconds") {
        &[][..]
    } else {
        &["--drain-seconds", "5"][..]
    };
    // Each server its own stores (flags in `extra` still win over these variables):
    // tests run in parallel, and the embedded stores lock their directories.
    let stores = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .env("LONGVIEW_RAG_DIR", stores.path().join("rag"))
        .env(
            "LONGVIEW_RECOMMEND_STORE_DIR",
            stores.path().join("recommend"),
        )
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(drain)
        .args(extra)
        .arg("--model-dir")
        .arg(model_dir())
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (mut grpc, mut metrics) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.lock().unwrap().push(line.clone());
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(addr) = event["grpc"].as_str() {
            grpc = Some(addr.parse().unwrap());
        }
        if let Some(addr) = event["metrics"].as_str() {
            metrics = Some(addr.parse().unwrap());
        }
        if event["message"] == "ready" {
            break;
        }
    }
    // Keep reading so the server never blocks on a full pipe, and keep the lines.
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    Served {
        child,
        grpc: grpc.expect("the server logged its address before ready"),
        metrics,
        log,
        _stores: stores,
    }
}

pub fn serve(extra: &[&str]) -> Served {
    serve_with(extra, &[])
}

impl Served {
    pub fn url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; `None` (after killing it) if it outlives `limit`.
    pub fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return Some(exit);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill().unwrap();
        None
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) {
        self.terminate();
        let exit = self.exit_within(Duration::from_secs(20));
        assert!(
            exit.is_some_and(|e| e.success()),
            "exit after SIGTERM: {exit:?}"
        );
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Served {
    /// A failed test must not leave its server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a client command; its stdout parsed as JSON, or the failure's stderr.
pub fn try_run(args: &[&str]) -> Result<serde_json::Value, String> {
    let output = Command::new(BIN).args(args).output().unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&output.stdout).unwrap())
}

pub fn run(args: &[&str]) -> serde_json::Value {
    try_run(args).unwrap_or_else(|stderr| panic!("{args:?}: {stderr}"))
}
