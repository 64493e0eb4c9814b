//! `longview bench rag`: retrieval latency of the embedded store at scale. The vectors are
//! synthetic (random unit vectors, the hardest case for a graph index: no clusters), the
//! chunk texts are sentences drawn from a fixed corpus; no model runs, so what is timed is
//! the store, the BM25 index and fusion alone.

use crate::bench::CORPUS;
use longview_core::{Span, Tenant};
use longview_rag::lexical::LexicalIndex;
use longview_rag::record::{ChunkRecord, DocumentChunks, MetadataFilter, StoredChunk};
use longview_rag::store::EmbeddedStore;
use longview_rag::{Mode, Retriever};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Instant;

const DIMENSIONS: usize = 384;
const CHUNKS_PER_DOCUMENT: usize = 10;
const DOCUMENTS_PER_WRITE: usize = 100;
/// Share of chunks that belong to another tenant: searches must filter them out.
const OTHER_TENANT_EVERY: usize = 10;
const GOAL_P99_MS: f64 = 20.0;

pub async fn run(chunks: usize, queries: usize, top_k: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("store"), DIMENSIONS)?);
    let lexical = Arc::new(LexicalIndex::open(&dir.path().join("bm25"))?);
    let retriever = Retriever::new(store.clone(), lexical);
    let (tenant, other) = (Tenant::default(), Tenant::new("other"));
    let mut rng = StdRng::seed_from_u64(11);

    let started = Instant::now();
    let documents = chunks / CHUNKS_PER_DOCUMENT;
    for first in (0..documents).step_by(DOCUMENTS_PER_WRITE) {
        for (owner, range) in split_by_tenant(first, documents.min(first + DOCUMENTS_PER_WRITE)) {
            let batch = range.map(|d| document(d, &mut rng)).collect();
            retriever
                .replace(if owner { &other } else { &tenant }, batch)
                .await?;
        }
    }
    let ingest = started.elapsed().as_secs_f64();
    println!(
        "ingest: {} chunks ({DIMENSIONS} dimensions, synthetic) in {ingest:.1} s = {:.0} chunks/s",
        store.len(),
        store.len() as f64 / ingest
    );

    println!(
        "{:<8} {:>9} {:>9}   (top_k {top_k}, {queries} queries, tenant-filtered)",
        "mode", "p50 ms", "p99 ms"
    );
    for (name, mode) in [
        ("dense", Mode::Dense),
        ("bm25", Mode::Bm25),
        ("hybrid", Mode::Hybrid),
    ] {
        let mut latencies = Vec::with_capacity(queries);
        for _ in 0..queries {
            let (text, vector) = (sentence(&mut rng), unit(&mut rng));
            let t = Instant::now();
            let hits = retriever
                .search(
                    &tenant,
                    &text,
                    vector,
                    top_k,
                    mode,
                    &MetadataFilter::default(),
                )
                .await?;
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(!hits.is_empty(), "{name} search found nothing");
        }
        latencies.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
        let verdict = if p99 <= GOAL_P99_MS { "within" } else { "OVER" };
        println!("{name:<8} {p50:>9.2} {p99:>9.2}   p99 {verdict} the {GOAL_P99_MS} ms goal");
    }

    drop(retriever);
    let reopened = Instant::now();
    drop(store);
    let store = EmbeddedStore::open(&dir.path().join("store"), DIMENSIONS)?;
    println!(
        "restart (save on close + open with the saved graph): {:.1} s, {} chunks",
        reopened.elapsed().as_secs_f64(),
        store.len()
    );
    drop(store);
    std::fs::remove_file(dir.path().join("store/vectors.json"))?;
    let rebuilt = Instant::now();
    let store = EmbeddedStore::open(&dir.path().join("store"), DIMENSIONS)?;
    println!(
        "recovery (graph missing, rebuilt from the stored chunks): {:.1} s, {} chunks",
        rebuilt.elapsed().as_secs_f64(),
        store.len()
    );
    Ok(())
}

/// Documents `first..end` split into runs of one tenant each (every tenth is "other").
fn split_by_tenant(first: usize, end: usize) -> Vec<(bool, std::ops::Range<usize>)> {
    let mut runs: Vec<(bool, std::ops::Range<usize>)> = Vec::new();
    for d in first..end {
        let owner = d % OTHER_TENANT_EVERY == 0;
        match runs.last_mut() {
            Some((o, range)) if *o == owner => range.end = d + 1,
            _ => runs.push((owner, d..d + 1)),
        }
    }
    runs
}

fn document(index: usize, rng: &mut StdRng) -> DocumentChunks {
    let document_id = format!("doc-{index}");
    let chunks = (0..CHUNKS_PER_DOCUMENT)
        .map(|i| {
            let text = (0..4).map(|_| sentence(rng)).collect::<Vec<_>>().join(" ");
            let record = ChunkRecord {
                document_id: document_id.clone(),
                index: i as u32,
                span: Span {
                    start: 0,
                    end: text.chars().count(),
                    byte_start: 0,
                    byte_end: text.len(),
                },
                text,
                metadata: Default::default(),
            };
            StoredChunk {
                record,
                vector: unit(rng),
            }
        })
        .collect();
    DocumentChunks {
        document_id,
        chunks,
    }
}

fn sentence(rng: &mut StdRng) -> String {
    CORPUS[rng.random_range(0..CORPUS.len())].to_string()
}

fn unit(rng: &mut StdRng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIMENSIONS).map(|_| rng.random::<f32>() - 0.5).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_runs_cover_the_range() {
        let runs = split_by_tenant(0, 25);
        assert_eq!(runs[0], (true, 0..1));
        assert_eq!(runs[1], (false, 1..10));
        assert_eq!(runs.iter().map(|(_, r)| r.len()).sum::<usize>(), 25);
    }
}
