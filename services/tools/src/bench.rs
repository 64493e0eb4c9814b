//! `longview bench`: encoder throughput, and classification of growing documents (time
//! per token and peak memory), each size in a fresh process so peaks do not carry over.

use crate::ModelArgs;
use anyhow::Context;
use clap::{Args, Subcommand};
use longview_classify::{ClassifyLimits, ClassifyService, HeadRegistry};
use longview_models::{Backend, DeviceKind, Encoder, ModelDir};
use longview_proto::v1::{self as pb, classify_server::Classify};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Encoder tokens per second at several batch sizes, in process.
    Embed {
        #[command(flatten)]
        model: ModelArgs,
        /// Batch sizes to measure.
        #[arg(
            long,
            env = "LONGVIEW_BENCH_BATCH_SIZES",
            value_delimiter = ',',
            default_value = "1,8,32"
        )]
        batch_sizes: Vec<usize>,
        /// Tokens per sequence, special tokens included.
        #[arg(long, env = "LONGVIEW_BENCH_TOKENS", default_value_t = 128)]
        tokens: usize,
        /// Seconds to measure each batch size.
        #[arg(long, env = "LONGVIEW_BENCH_SECONDS", default_value_t = 5.0)]
        seconds: f64,
        /// cpu (exact f32 against the packed f32 and int8 backends) or cuda[:N] (exact
        /// f32 against bf16 and f16; needs a build with --features cuda).
        #[arg(long, env = "LONGVIEW_DEVICE", default_value = "cpu")]
        device: DeviceKind,
    },
    /// Classify documents of growing length: microseconds per token and peak RSS.
    Classify {
        #[command(flatten)]
        model: ModelArgs,
        /// Document sizes in tokens.
        #[arg(
            long,
            env = "LONGVIEW_BENCH_SIZES",
            value_delimiter = ',',
            default_value = "1000,10000,100000,1000000"
        )]
        sizes: Vec<usize>,
        /// Measure one size in this process and print it as JSON (used by the parent run).
        #[arg(long, hide = true)]
        one: Option<usize>,
    },
    /// One encoder backend answering the side-by-side benchmark (bench/compare/run) over
    /// stdin and stdout, one JSON command per line.
    Encoder {
        #[command(flatten)]
        model: ModelArgs,
        /// The benchmark's input file (sets of token ids, written by bench/compare).
        #[arg(long)]
        input: PathBuf,
        /// Encoder backend: int8, fast or exact.
        #[arg(long, default_value = "int8")]
        encoder: Backend,
    },
    /// Concurrent one-sentence Embed calls over gRPC, dynamic batching on against off.
    Batching {
        #[command(flatten)]
        model: ModelArgs,
        /// Concurrent clients, each with one request in flight at a time.
        #[arg(long, env = "LONGVIEW_BENCH_CLIENTS", default_value_t = 64)]
        clients: usize,
        /// Seconds to measure each server.
        #[arg(long, env = "LONGVIEW_BENCH_SECONDS", default_value_t = 10.0)]
        seconds: f64,
    },
    /// Answer generation: prompt and generated tokens per second, beside a reference server.
    Generate(crate::bench_generate::BenchGenerateArgs),
    /// Documents per second through the whole monitor pipeline against the encoder alone.
    Monitor {
        #[command(flatten)]
        model: ModelArgs,
        /// Documents per round.
        #[arg(long, env = "LONGVIEW_BENCH_DOCUMENTS", default_value_t = 1_000)]
        documents: usize,
        /// Sentences per document (each distinct, so the pipeline cannot reuse one
        /// sentence's encoding for another; the document is read as its sentences).
        #[arg(long, env = "LONGVIEW_BENCH_SENTENCES", default_value_t = 1)]
        sentences: usize,
        /// Rounds (encoder, then pipeline, each round).
        #[arg(long, env = "LONGVIEW_BENCH_ROUNDS", default_value_t = 3)]
        rounds: usize,
    },
    /// Retrieval latency (dense, BM25, hybrid) of the embedded store at 100,000 chunks.
    Rag {
        /// Chunks to store (synthetic vectors; texts from a fixed corpus).
        #[arg(long, env = "LONGVIEW_BENCH_CHUNKS", default_value_t = 100_000)]
        chunks: usize,
        /// Queries timed per mode.
        #[arg(long, env = "LONGVIEW_BENCH_QUERIES", default_value_t = 500)]
        queries: usize,
        #[arg(long, env = "LONGVIEW_TOP_K", default_value_t = 10)]
        top_k: usize,
    },
    /// Score calls of 10,000 cached candidates over gRPC: p50 and p99 against the 50 ms goal.
    Recommend {
        #[command(flatten)]
        model: ModelArgs,
        /// Candidates per call (and items stored).
        #[arg(long, env = "LONGVIEW_BENCH_CANDIDATES", default_value_t = 10_000)]
        candidates: usize,
        /// Timed calls per case.
        #[arg(long, env = "LONGVIEW_BENCH_CALLS", default_value_t = 30)]
        calls: usize,
        /// Where the markdown report is written.
        #[arg(
            long,
            env = "LONGVIEW_BENCH_OUT",
            default_value = "reports/bench-recommend.md"
        )]
        out: std::path::PathBuf,
    },
}

/// Varied English text that benchmark inputs are cut from.
pub(crate) const CORPUS: &[&str] = &[
    "Shares of regional lenders fell sharply on Tuesday after a weaker than expected earnings report raised fresh questions about deposit costs.",
    "Technology stocks recovered some of last week's losses as investors returned to chip makers and cloud providers.",
    "The central bank kept its benchmark rate unchanged and signalled that inflation, though easing, remained above target.",
    "In football, the home side came from two goals down to win in extra time, and the coach praised a young midfielder who scored twice.",
    "Lawmakers debated a bill that would tighten reporting rules for large private funds; critics warned of higher compliance costs.",
    "Heavy rain flooded several districts overnight, closing schools and forcing the evacuation of hundreds of residents near the river.",
    "The company said it would cut about four hundred jobs as part of a restructuring aimed at saving costs over two years.",
    "Researchers reported that a new battery chemistry retained most of its capacity after thousands of charging cycles.",
];

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Embed {
            model,
            batch_sizes,
            tokens,
            seconds,
            device,
        } => embed(
            &model,
            device,
            &batch_sizes,
            tokens,
            Duration::from_secs_f64(seconds),
        ),
        BenchCommand::Classify {
            model,
            one: Some(size),
            ..
        } => classify_one(&model, size).await,
        BenchCommand::Classify {
            model,
            sizes,
            one: None,
        } => classify_sizes(&model, &sizes),
        BenchCommand::Encoder {
            model,
            input,
            encoder,
        } => crate::bench_encoder::serve(&model, &input, encoder),
        BenchCommand::Batching {
            model,
            clients,
            seconds,
        } => crate::bench_batching::run(&model, clients, Duration::from_secs_f64(seconds)).await,
        BenchCommand::Generate(args) => crate::bench_generate::run(args).await,
        BenchCommand::Monitor {
            model,
            documents,
            sentences,
            rounds,
        } => crate::bench_monitor::run(&model, documents, sentences, rounds).await,
        BenchCommand::Rag {
            chunks,
            queries,
            top_k,
        } => crate::bench_rag::run(chunks, queries, top_k).await,
        BenchCommand::Recommend {
            model,
            candidates,
            calls,
            out,
        } => crate::bench_recommend::run(&model, candidates, calls, &out).await,
    }
}

fn embed(
    model: &ModelArgs,
    device: DeviceKind,
    batch_sizes: &[usize],
    tokens: usize,
    budget: Duration,
) -> anyhow::Result<()> {
    let dir = model.model_dir()?;
    let model =
        ModelDir::open(&dir).with_context(|| format!("model directory {}", dir.display()))?;
    let backends = match device {
        DeviceKind::Cpu => [Backend::Exact, Backend::Fast, Backend::Int8],
        DeviceKind::Cuda(_) => [Backend::Exact, Backend::ExactBf16, Backend::ExactF16],
    };
    let encoders = backends
        .iter()
        .map(|&b| Encoder::load(&model, device, b))
        .collect::<Result<Vec<_>, _>>()?;
    let exact = &encoders[0];
    let info = exact.info().clone();
    let content = tokens
        .checked_sub(info.special_tokens)
        .filter(|&n| n > 0)
        .context("--tokens leaves no content")?;
    let corpus = exact.tokenizer().tokenize(&CORPUS.join(" "))?;
    let sequence: Vec<u32> = corpus.ids.iter().copied().cycle().take(content).collect();
    println!(
        "encoder: {} ({}) on {device}, {tokens} tokens per sequence, {} CPU threads",
        info.name,
        info.version,
        rayon_threads()
    );
    for encoder in &encoders[1..] {
        println!(
            "quality: worst cosine {} vs exact over {} texts: {:.7}",
            encoder.info().backend,
            CORPUS.len() * 2,
            worst_cosine(encoder, exact)?
        );
    }
    let [a, b, c] = backends.map(|b| b.to_string());
    println!(
        "{:>6}  {:>16}  {:>16}  {:>16}  {:>10}  {:>10}",
        "batch",
        format!("{a} tok/s"),
        format!("{b} tok/s"),
        format!("{c} tok/s"),
        format!("{b}/{a}"),
        format!("{c}/{a}"),
    );
    for &batch in batch_sizes {
        let inputs: Vec<&[u32]> = vec![sequence.as_slice(); batch];
        // Alternate the backends in rounds (A B C A B C) so machine noise hits all alike.
        let mut times = vec![Vec::new(); encoders.len()];
        let started = Instant::now();
        while started.elapsed() < budget * 3 || times[0].len() < 3 {
            for (encoder, times) in encoders.iter().zip(&mut times) {
                times.push(time(encoder, &inputs)?);
            }
        }
        let rates: Vec<f64> = times
            .iter()
            .map(|t| (batch * tokens * t.len()) as f64 / t.iter().sum::<f64>())
            .collect();
        println!(
            "{batch:>6}  {:>16.0}  {:>16.0}  {:>16.0}  {:>9.2}x  {:>9.2}x",
            rates[0],
            rates[1],
            rates[2],
            rates[1] / rates[0],
            rates[2] / rates[0]
        );
    }
    Ok(())
}

fn time(encoder: &Encoder, inputs: &[&[u32]]) -> anyhow::Result<f64> {
    let started = Instant::now();
    encoder.encode(inputs)?;
    Ok(started.elapsed().as_secs_f64())
}

fn rayon_threads() -> usize {
    rayon::current_num_threads()
}

/// The lowest cosine between two backends' vectors for the corpus sentences, alone
/// and joined, in one mixed-length batch.
fn worst_cosine(fast: &Encoder, exact: &Encoder) -> anyhow::Result<f64> {
    let tokenizer = fast.tokenizer();
    let texts: Vec<String> = CORPUS
        .iter()
        .map(|s| s.to_string())
        .chain(CORPUS.windows(3).map(|w| w.join(" ")))
        .collect();
    let sequences = texts
        .iter()
        .map(|t| tokenizer.tokenize(t).map(|t| t.ids))
        .collect::<Result<Vec<_>, _>>()?;
    let views: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
    let (a, b) = (fast.encode(&views)?, exact.encode(&views)?);
    Ok(a.iter()
        .zip(&b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p * q) as f64).sum::<f64>())
        // NaN is the worst of all (`f64::min` would pass over it).
        .fold(
            1.0,
            |worst, c| if c < worst || c.is_nan() { c } else { worst },
        ))
}

/// Runs each size in a child process and prints the table, relative to the smallest size.
fn classify_sizes(model: &ModelArgs, sizes: &[usize]) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    println!(
        "{:>10}  {:>8}  {:>10}  {:>10}  {:>9}  {:>12}",
        "tokens", "windows", "seconds", "µs/token", "vs first", "peak RSS MB"
    );
    let mut first = None;
    for &size in sizes {
        let mut command = Command::new(&exe);
        command.args(["bench", "classify", "--one", &size.to_string()]);
        if let Some(dir) = &model.model_dir {
            command.arg("--model-dir").arg(dir);
        }
        command.arg("--models-root").arg(model.models_root());
        let output = command.output()?;
        anyhow::ensure!(
            output.status.success(),
            "size {size}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let row: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let per_token = row["us_per_token"].as_f64().unwrap_or(f64::NAN);
        let baseline = *first.get_or_insert(per_token);
        println!(
            "{:>10}  {:>8}  {:>10.1}  {:>10.1}  {:>8.2}x  {:>12.0}",
            row["tokens"],
            row["windows"],
            row["seconds"].as_f64().unwrap_or(f64::NAN),
            per_token,
            per_token / baseline,
            row["peak_rss_mb"].as_f64().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

/// One classification of a `size`-token document through the Classify service, in process.
async fn classify_one(model: &ModelArgs, size: usize) -> anyhow::Result<()> {
    let worker = model.worker().await?;
    let tokenizer = worker.loaded()?.tokenizer.clone();
    let text = document_of(&tokenizer, size)?;
    let limits = ClassifyLimits {
        max_document_bytes: usize::MAX,
        max_document_tokens: usize::MAX,
        ..Default::default()
    };
    let service = ClassifyService::new(worker, limits, HeadRegistry::default());
    let labels = ["markets", "sports", "politics", "weather"].map(|n| pb::Label {
        name: n.into(),
        description: String::new(),
    });
    let options = pb::ClassifyOptions {
        labels: Some(pb::classify_options::Labels::ZeroShot(pb::ZeroShotLabels {
            labels: labels.to_vec(),
        })),
        ..Default::default()
    };
    let service = &service;
    let classify = |text: String| {
        let request = tonic::Request::new(pb::ClassifyRequest {
            text,
            options: Some(options.clone()),
        });
        async move { Ok::<_, tonic::Status>(service.classify(request).await?.into_inner()) }
    };
    // A warm server is what is measured: the first call also embeds the label
    // prototypes and grows the encoder's buffers, which would count against 1k only.
    classify(document_of(&tokenizer, 1_000)?).await?;
    // Short documents repeat (median) so one call's noise does not decide the row.
    let repeats = (100_000 / size.max(1)).clamp(1, 9);
    let mut times = Vec::with_capacity(repeats);
    let mut response = None;
    for _ in 0..repeats {
        let started = Instant::now();
        response = Some(classify(text.clone()).await?);
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let seconds = times[times.len() / 2];
    let response = response.unwrap_or_default();
    let tokens = response.usage.map_or(0, |u| u.tokens_seen);
    let row = serde_json::json!({
        "tokens": tokens,
        "windows": response.window_count,
        "seconds": seconds,
        "us_per_token": seconds * 1e6 / tokens.max(1) as f64,
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{row}");
    Ok(())
}

/// A document of exactly `size` tokens, cut from the corpus repeated.
fn document_of(
    tokenizer: &Arc<longview_models::TextTokenizer>,
    size: usize,
) -> anyhow::Result<String> {
    let mut text = String::new();
    let mut rounds = 0usize;
    let mut append = |text: &mut String, count: usize| {
        for _ in 0..count {
            for sentence in CORPUS {
                text.push_str(sentence);
                text.push_str(if rounds % 7 == 6 { "\n\n" } else { " " });
            }
            rounds += 1;
        }
    };
    append(&mut text, 1);
    let per_round = tokenizer.tokenize(&text)?.len().max(1);
    // Grow by the estimated shortfall and tokenize once per step: re-tokenizing the whole
    // text after every corpus round made a 1M-token document take many minutes.
    loop {
        let tokens = tokenizer.tokenize(&text)?;
        if tokens.len() >= size {
            return Ok(text[..tokens.offsets[size - 1].1].to_string());
        }
        append(&mut text, (size - tokens.len()).div_ceil(per_round) + 1);
    }
}

/// The process's peak resident set (VmHWM), in MB; NaN where /proc is not available.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.map_or(f64::NAN, |kb| kb / 1024.0)
}
