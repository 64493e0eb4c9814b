//! Encodes the same batch of 128-token sequences in a loop and prints tokens per second:
//! a small target for profilers (`perf record`, `valgrind --tool=callgrind`) that builds
//! without the server.
//!
//!     cargo run --release -p longview-models --example encode_loop -- MODEL_DIR int8 32 20

#![allow(clippy::unwrap_used)]

use longview_models::{Backend, DeviceKind, Encoder, ModelDir};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = ModelDir::open(std::path::Path::new(&args[1]))?;
    let backend: Backend = args.get(2).map_or("int8", String::as_str).parse().unwrap();
    let batch: usize = args.get(3).map_or(Ok(32), |s| s.parse())?;
    let rounds: usize = args.get(4).map_or(Ok(20), |s| s.parse())?;
    let encoder = Encoder::load(&dir, DeviceKind::Cpu, backend)?;
    let text = "Shares of regional lenders fell sharply on Tuesday after a weaker than expected \
                earnings report raised fresh questions about deposit costs. ";
    let ids = encoder.tokenizer().tokenize(&text.repeat(8))?.ids;
    let sequence = &ids[..126];
    let inputs = vec![sequence; batch];
    encoder.encode(&inputs)?;
    let (started, cpu_started) = (Instant::now(), cpu_seconds());
    for _ in 0..rounds {
        encoder.encode(&inputs)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let tokens = (rounds * batch * 128) as f64;
    // On a shared machine wall time depends on the neighbours; CPU time much less so.
    println!(
        "{backend} batch {batch}: {:.0} tokens/s ({:.2} ms per batch), {:.0} tokens per CPU-second",
        tokens / seconds,
        seconds * 1e3 / rounds as f64,
        tokens / (cpu_seconds() - cpu_started)
    );
    Ok(())
}

/// CPU time of every thread of this process so far (Linux), in seconds.
fn cpu_seconds() -> f64 {
    let tasks = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten();
    let nanos: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}
