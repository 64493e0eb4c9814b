//! Long texts are tokenized in pieces; the result must equal tokenizing paragraph by
//! paragraph, with offsets into the whole text.

#![allow(clippy::unwrap_used)]

mod common;

use longview_worker::{Worker, WorkerConfig};
use std::sync::Arc;

#[tokio::test]
async fn long_text_tokenizes_like_its_paragraphs() {
    let worker = Worker::spawn(WorkerConfig::new(common::model_dir())).unwrap();
    worker.ready().await.unwrap();
    let paragraphs: Vec<String> = (0..3000)
        .map(|i| format!("Paragraph {i}: the committee’s réunion on item №{i} ended with a vote of {} to {}.", i % 9, i % 4))
        .collect();
    let text = paragraphs.join("\n");
    assert!(text.len() > 200_000, "several pieces");

    let whole = worker
        .tokenize(Arc::new(vec![text.clone()]))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let parts = worker.tokenize(Arc::new(paragraphs.clone())).await.unwrap();
    let mut start = 0;
    let (mut ids, mut offsets) = (Vec::new(), Vec::new());
    for (paragraph, tokens) in paragraphs.iter().zip(parts) {
        ids.extend(tokens.ids);
        offsets.extend(tokens.offsets.iter().map(|&(s, e)| (s + start, e + start)));
        start += paragraph.len() + 1;
    }
    assert_eq!(whole.ids, ids);
    assert_eq!(whole.offsets, offsets);
}
