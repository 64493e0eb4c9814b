//! The real `longview` binary, as a user runs it: serve on a free port, call it with the
//! client commands, stop it with SIGTERM.

#![allow(clippy::unwrap_used)]

mod common;

use common::{BIN, model_dir, run, serve};
use std::process::Command;
use std::time::Duration;

#[test]
fn serve_classify_embed_and_stop() {
    let mut server = serve(&[]);
    let addr = server.url();
    let article = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/markets-article.txt"
    );
    let labels = "markets,sports,politics";
    let result = run(&[
        "classify", "--server", &addr, "--labels", labels, "--file", article, "--json",
    ]);
    assert_eq!(result["predicted"][0], "markets", "{result}");
    assert!(result["usage"]["tokens_total"].as_u64().unwrap() > 300);
    assert!(!result["evidence"][0]["text"].as_str().unwrap().is_empty());

    let result = run(&["embed", "--server", &addr, "--json", "Rates held steady."]);
    assert_eq!(
        result["embeddings"][0]["embedding"]
            .as_array()
            .unwrap()
            .len(),
        384
    );

    server.terminate();
    let exit = server.exit_within(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|e| e.success()),
        "exit within 10 s of SIGTERM: {exit:?}"
    );
}

#[test]
fn trained_head_is_served_by_name() {
    let root = tempfile::tempdir().unwrap();
    let root_arg = root.path().to_str().unwrap();
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/sentiment/financial.jsonl"
    );
    let output = Command::new(BIN)
        .args([
            "train",
            "classifier",
            "--data",
            data,
            "--name",
            "fin",
            "--epochs",
            "40",
            "--models-root",
            root_arg,
        ])
        .arg("--model-dir")
        .arg(model_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(root.path().join("heads/fin/head.safetensors").is_file());

    // Classify only: with a fresh models root, serving sentiment too would first train
    // the default sentiment head there (minutes) before "ready".
    let server = serve(&["--models-root", root_arg, "--target", "classify"]);
    let addr = server.url();
    let text = "Quorvex Mining warned of a deep loss, suspended its dividend and said lenders may call its debt.";
    let result = run(&[
        "classify",
        "--server",
        &addr,
        "--label-set",
        "fin",
        "--json",
        text,
    ]);
    assert_eq!(result["predicted"][0], "negative", "{result}");
    assert_eq!(result["model"]["head"], "fin");
    assert_eq!(result["model"]["head_version"].as_str().unwrap().len(), 12);
    let attention = run(&[
        "classify",
        "--server",
        &addr,
        "--label-set",
        "fin",
        "--aggregation",
        "attention",
        "--json",
        text,
    ]);
    assert_eq!(attention["predicted"][0], "negative", "{attention}");
    server.stop();
}

#[test]
fn recommend_stores_items_and_ranks_them_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let items = dir.path().join("items.jsonl");
    std::fs::write(
        &items,
        [
            r#"{"item_id": "moon", "text": "Astronauts land on the Moon and plant a flag", "popularity": 5}"#,
            r#"{"item_id": "soup", "text": "A hearty lentil soup with cumin and lemon", "popularity": 500}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let store = dir.path().join("store");
    let server = serve(&[
        "--target",
        "recommend",
        "--recommend-store-dir",
        store.to_str().unwrap(),
    ]);
    let addr = server.url();
    let put = run(&[
        "recommend",
        "put-items",
        "--server",
        &addr,
        "--json",
        items.to_str().unwrap(),
    ]);
    assert_eq!(put["stored"], 2, "{put}");

    let space = "A rocket carries a crew to the space station";
    let scored = run(&[
        "recommend",
        "score",
        "--server",
        &addr,
        "--json",
        "--history",
        space,
        "--candidate-id",
        "soup",
        "--candidate-id",
        "moon",
        "--candidate",
        "probe=A probe flies past the moons of Jupiter",
        "--weights",
        "content=1,popularity=0.05",
    ]);
    // Soup is a hundred times as popular, but with popularity weighed lightly the
    // space history puts both space candidates above it.
    assert_eq!(scored["candidates"][0]["item_id"], "moon", "{scored}");
    let last = &scored["candidates"][2];
    assert_eq!(last["item_id"], "soup", "{scored}");
    assert!(last["components"]["popularity"].as_f64().unwrap() == 1.0);
    assert_eq!(scored["cold_start"], false);

    let table = Command::new(BIN)
        .args([
            "recommend",
            "score",
            "--server",
            &addr,
            "--candidate-id",
            "moon",
            "--candidate-id",
            "soup",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("rank") && table.contains("popularity"),
        "{table}"
    );
    assert!(table.contains("cold start"), "{table}");
    let first = table.lines().nth(1).unwrap();
    assert!(
        first.trim_start().starts_with("1 ") && first.contains("soup"),
        "{table}"
    );
}

#[test]
fn invalid_configuration_exits_64() {
    let output = Command::new(BIN)
        .args(["serve", "--max-texts", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--max-texts"));
}

/// Label → score from a JSON object or a list of {label, score}.
fn scores(value: &serde_json::Value) -> std::collections::BTreeMap<String, f64> {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| {
                (
                    i["label"].as_str().unwrap().to_string(),
                    i["score"].as_f64().unwrap(),
                )
            })
            .collect(),
        other => panic!("not scores: {other}"),
    }
}

#[test]
fn exported_hugging_face_classifier_serves_sentiment_identically() {
    let root = tempfile::tempdir().unwrap();
    let root_arg = root.path().to_str().unwrap();
    let export = root.path().join("fin-hf");
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/sentiment/financial.jsonl"
    );
    let output = Command::new(BIN)
        .args([
            "train",
            "classifier",
            "--data",
            data,
            "--name",
            "fin-first",
            "--epochs",
            "30",
            "--models-root",
            root_arg,
        ])
        .args([
            "--features",
            "first-state",
            "--aggregation",
            "mean",
            "--export-hf",
            export.to_str().unwrap(),
        ])
        .arg("--model-dir")
        .arg(model_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["id2label"]["0"], "negative");

    let server = serve(&[
        "--models-root",
        root_arg,
        "--sentiment-model",
        export.to_str().unwrap(),
    ]);
    let addr = server.url();
    for text in [
        "Orlen Dynamics doubled its profit and raised guidance.",
        "Kestra Retail filed for bankruptcy protection.",
    ] {
        let head = run(&[
            "classify",
            "--server",
            &addr,
            "--label-set",
            "fin-first",
            "--json",
            text,
        ]);
        let byo = run(&["sentiment", "--server", &addr, "--json", text]);
        let (head, byo) = (
            scores(&head["scores"]),
            scores(&byo["documents"][0]["probabilities"]),
        );
        assert_eq!(
            head.keys().collect::<Vec<_>>(),
            byo.keys().collect::<Vec<_>>()
        );
        for (label, p) in &head {
            assert!(
                (p - byo[label]).abs() < 1e-4,
                "{text}: {label} {p} vs {}",
                byo[label]
            );
        }
    }
    server.stop();
}
