//! Telemetry of the real binary: `/metrics` read by the Prometheus client library's own
//! parser, spans received by a real OpenTelemetry collector (rotel, over OTLP/gRPC), and
//! logs that never carry document text. The Python tools come from
//! `scripts/telemetry-tools` (pinned, installed once into the user cache).

#![allow(clippy::unwrap_used)]

mod common;

use common::{run, serve, serve_with, try_run};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LABELS: &str = "markets,sports";
const MARKER: &str = "Quokkaville-7731";

/// The venv's python, installing the pinned tools on first use.
fn python() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/telemetry-tools");
    let output = Command::new(script).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

fn scrape(addr: SocketAddr) -> String {
    let mut socket = TcpStream::connect(addr).unwrap();
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    socket.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_string()
}

/// Families as prometheus_client's text parser reads them: name → (type, samples).
fn parse_exposition(text: &str) -> Value {
    const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = {
    f.name: {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())
}
print(json.dumps(families))
"#;
    let mut child = Command::new(python())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused /metrics: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sample<'a>(
    families: &'a Value,
    family: &str,
    sample: &str,
    labels: &[(&str, &str)],
) -> &'a Value {
    let samples = families[family]["samples"].as_array();
    let samples = samples.unwrap_or_else(|| panic!("no family {family}: {families}"));
    let found = samples
        .iter()
        .find(|s| s[0] == sample && labels.iter().all(|(k, v)| s[1][*k] == *v));
    &found.unwrap_or_else(|| panic!("no {sample} {labels:?} in {family}: {samples:?}"))[2]
}

#[test]
fn metrics_endpoint_parses_as_prometheus_text() {
    let server = serve(&["--metrics-listen", "127.0.0.1:0"]);
    let url = server.url();
    run(&[
        "classify",
        "--server",
        &url,
        "--labels",
        LABELS,
        "--json",
        "Stocks fell.",
    ]);
    let duplicate = try_run(&[
        "classify", "--server", &url, "--labels", "a,a", "--json", "x",
    ]);
    assert!(duplicate.unwrap_err().contains("InvalidArgument"));

    let families = parse_exposition(&scrape(server.metrics.unwrap()));
    let classify = [("service", "longview.v1.Classify"), ("method", "Classify")];
    let ok = [classify[0], classify[1], ("code", "OK")];
    let bad = [classify[0], classify[1], ("code", "INVALID_ARGUMENT")];
    let requests = "longview_grpc_requests";
    assert_eq!(
        sample(&families, requests, "longview_grpc_requests_total", &ok),
        1.0
    );
    assert_eq!(
        sample(&families, requests, "longview_grpc_requests_total", &bad),
        1.0
    );
    let seconds = "longview_grpc_request_seconds";
    assert_eq!(families[seconds]["type"], "histogram");
    let all = [ok[0], ok[1], ok[2], ("le", "+Inf")];
    assert_eq!(
        sample(
            &families,
            seconds,
            "longview_grpc_request_seconds_bucket",
            &all
        ),
        1.0
    );
    for histogram in [
        "longview_worker_batch_size",
        "longview_worker_batch_tokens",
        "longview_worker_inference_seconds",
    ] {
        assert_eq!(families[histogram]["type"], "histogram", "{histogram}");
        let count = sample(&families, histogram, &format!("{histogram}_count"), &[]);
        assert!(count.as_f64().unwrap() >= 1.0, "{histogram}");
    }
    let tokens = "longview_tokens_processed";
    assert!(sample(&families, tokens, "longview_tokens_processed_total", &[]).as_f64() > Some(0.0));
    assert_eq!(families["longview_worker_queue_depth"]["type"], "gauge");
    server.stop();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// rotel-agent receiving OTLP on `grpc`, printing every span it gets to `log`.
fn start_collector(grpc: u16, log: &std::path::Path) -> std::process::Child {
    let locate =
        "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))";
    let agent = Command::new(python())
        .args(["-c", locate])
        .output()
        .unwrap();
    let agent = String::from_utf8(agent.stdout).unwrap();
    let child = Command::new(agent.trim())
        .arg("start")
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
        .args([
            "--otlp-http-endpoint",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(["--exporter", "blackhole", "--debug-log", "traces"])
        .args(["--debug-log-verbosity", "detailed"])
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", grpc)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "rotel did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The collector's printout of one span: its lines up to the next span.
fn span_block<'a>(printout: &'a str, name: &str) -> Option<&'a str> {
    let at = printout.find(&format!("Name           : {name}\n"))?;
    let start = printout[..at].rfind("Span #")?;
    let end = printout[at..]
        .find("Span #")
        .map_or(printout.len(), |e| at + e);
    Some(&printout[start..end])
}

fn field<'a>(block: &'a str, name: &str) -> &'a str {
    let line = block
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .unwrap();
    line.split_once(':').unwrap().1.trim()
}

#[test]
fn spans_reach_a_real_otlp_collector() {
    let dir = tempfile::tempdir().unwrap();
    let printout = dir.path().join("rotel.log");
    let grpc = free_port();
    let mut collector = start_collector(grpc, &printout);
    let endpoint = format!("http://127.0.0.1:{grpc}");
    let server = serve_with(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "longview-otel-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let url = server.url();
    run(&[
        "classify",
        "--server",
        &url,
        "--labels",
        LABELS,
        "--json",
        "Stocks fell on rate fears.",
    ]);
    server.stop();

    let started = Instant::now();
    let (request, classify) = loop {
        let text = std::fs::read_to_string(&printout).unwrap();
        let request = span_block(&text, "longview.v1.Classify/Classify").map(str::to_string);
        let classify = span_block(&text, "classify").map(str::to_string);
        if let (Some(request), Some(classify)) = (request, classify) {
            assert!(
                text.contains("service.name: Str(longview-otel-test)"),
                "{text}"
            );
            break (request, classify);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "spans never arrived: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    collector.kill().unwrap();
    collector.wait().unwrap();

    assert_eq!(field(&request, "Kind"), "SPAN_KIND_SERVER");
    assert!(
        request.contains("rpc.grpc.status_code: Int(0)"),
        "{request}"
    );
    assert!(request.contains("tenant: Str(default)"), "{request}");
    // The service's span is a child of the request's, with numeric fields.
    assert_eq!(field(&classify, "Parent ID"), field(&request, "ID"));
    assert_eq!(field(&classify, "Trace ID"), field(&request, "Trace ID"));
    assert!(classify.contains("tokens: Int("), "{classify}");
    assert!(classify.contains("windows: Int(1)"), "{classify}");
}

#[test]
fn logs_never_carry_document_text() {
    let server = serve(&["--log-level", "debug"]);
    let url = server.url();
    let document = format!("Shares of {MARKER} jumped after record quarterly profit.");
    run(&[
        "classify", "--server", &url, "--labels", LABELS, "--json", &document,
    ]);
    let bad_window = ["--window", "8", "--overlap", "8", "--json"];
    let refused = try_run(
        &[
            &["classify", "--server", &url, "--labels", LABELS],
            &bad_window[..],
            &[&document],
        ]
        .concat(),
    );
    assert!(refused.unwrap_err().contains("InvalidArgument"));
    run(&["embed", "--server", &url, "--json", &document]);
    let log = server.log();
    server.stop();
    assert!(
        log.contains(r#""message":"request""#),
        "no request lines: {log}"
    );
    assert!(!log.contains(MARKER), "document text in the log:\n{log}");
}
