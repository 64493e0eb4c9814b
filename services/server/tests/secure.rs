//! The real binary with mutual TLS and API keys, called by its own client commands
//! (--ca, --cert, --key, --api-key); and the layered configuration it starts from.

#![allow(clippy::unwrap_used)]

mod common;

use common::{BIN, run, serve, try_run};
use std::path::Path;
use std::process::Command;

const KEY: &str = "acme-classify-key-0123456789";

fn write_keys(dir: &Path) -> String {
    let keys = dir.join("api-keys.toml");
    let file = format!("[[keys]]\ntenant = \"acme\"\nkey = \"{KEY}\"\nroles = [\"classify\"]\n");
    std::fs::write(&keys, file).unwrap();
    keys.to_str().unwrap().to_string()
}

#[test]
fn mutual_tls_and_api_keys_through_the_client_commands() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = Command::new(BIN)
        .args(["tls", "dev-certs", "--out", certs.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(out.success());
    let pem = |name: &str| certs.join(name).to_str().unwrap().to_string();
    let keys = write_keys(dir.path());
    let server = serve(&[
        "--tls-cert",
        &pem("server.pem"),
        "--tls-key",
        &pem("server.key"),
        "--tls-client-ca",
        &pem("ca.pem"),
        "--api-keys-file",
        &keys,
    ]);
    let url = format!("https://localhost:{}", server.grpc.port());
    let (ca, cert, key) = (pem("ca.pem"), pem("client.pem"), pem("client.key"));
    let call = [
        "classify",
        "--server",
        &url,
        "--labels",
        "markets,sports",
        "--json",
    ];
    let text = "Stocks slid as bond yields rose.";

    let full = [
        &call[..],
        &[
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--api-key",
            KEY,
            text,
        ],
    ]
    .concat();
    assert_eq!(run(&full)["predicted"][0], "markets");

    let no_key = [
        &call[..],
        &["--ca", &ca, "--cert", &cert, "--key", &key, text],
    ]
    .concat();
    assert!(try_run(&no_key).unwrap_err().contains("Unauthenticated"));

    let no_client_cert = [&call[..], &["--ca", &ca, "--api-key", KEY, text]].concat();
    assert!(
        try_run(&no_client_cert).is_err(),
        "served without a client certificate"
    );

    let plaintext = format!("http://localhost:{}", server.grpc.port());
    let plain = [
        "classify",
        "--server",
        &plaintext,
        "--labels",
        "a,b",
        "--api-key",
        KEY,
        text,
    ];
    assert!(try_run(&plain).is_err(), "served without TLS");
    server.stop();
}

fn check_config(args: &[&str], env: &[(&str, &str)]) -> Result<serde_json::Value, (i32, String)> {
    let output = Command::new(BIN)
        .args(["serve", "--check-config"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        return Err((output.status.code().unwrap(), stderr));
    }
    Ok(serde_json::from_slice(&output.stdout).unwrap())
}

#[test]
fn defaults_then_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("longview.toml");
    let toml = "target = \"classify\"\n[server]\ndrain_seconds = 7\n\n[worker]\nqueue_capacity = 9\nmax_batch_tokens = 1024\n\n[masking]\nenabled = true\n";
    std::fs::write(&file, toml).unwrap();
    let file = file.to_str().unwrap();
    let env = [("LONGVIEW__WORKER__QUEUE_CAPACITY", "11")];
    let config = check_config(&["--config", file, "--max-batch-tokens", "2048"], &env).unwrap();
    assert_eq!(config["target"], "classify"); // file
    assert_eq!(config["drain_deadline"], 7.0); // file
    assert_eq!(config["queue_capacity"], 11); // environment over file
    assert_eq!(config["max_batch_tokens"], 2048); // flag over file
    assert_eq!(config["masking"]["enabled"], true);
    assert_eq!(config["listen"], "127.0.0.1:50051"); // default
    // A flag's own variable (what the Helm chart sets) counts as the flag.
    let env = [
        ("LONGVIEW__SERVER__DRAIN_SECONDS", "6"),
        ("LONGVIEW_DRAIN_SECONDS", "8"),
    ];
    let config = check_config(&["--config", file], &env).unwrap();
    assert_eq!(config["drain_deadline"], 8.0);
    let config = check_config(&["--config", file, "--drain-seconds", "2"], &env).unwrap();
    assert_eq!(config["drain_deadline"], 2.0);
}

/// Flags, variables, and what the error must mention.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn invalid_configuration_exits_64_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[worker]\nqueue_capacty = 3\n").unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, "[[keys]]\ntenant = \"a\"\nkey = \"short\"\n").unwrap();
    let cases: [Case; 6] = [
        (&["--config", typo.to_str().unwrap()], &[], "queue_capacty"),
        (
            &[],
            &[("LONGVIEW__WORKER__QUEUE_CAPACITY", "many")],
            "WORKER.QUEUE_CAPACITY",
        ),
        (
            &["--api-keys-file", keys.to_str().unwrap()],
            &[],
            "key must be at least 16",
        ),
        (
            &["--tls-cert", "/nonexistent/cert.pem"],
            &[],
            "tls.cert and tls.key",
        ),
        (
            &[],
            &[("LONGVIEW__MASKING__PATTERNS", "[\"(\"]")],
            "masking pattern 0",
        ),
        (&["--queue-capacity", "lots"], &[], "--queue-capacity"),
    ];
    for (args, env, problem) in cases {
        let (code, stderr) = check_config(args, env).unwrap_err();
        assert_eq!(code, 64, "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(problem), "{args:?} {env:?}: {stderr}");
    }
}
