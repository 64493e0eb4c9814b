//! The model thread: loads the model, warms it up, then serves jobs until every handle
//! is dropped.

use crate::WorkerError;
use crate::batch::plan_batches;
use crate::worker::{Loaded, WorkerConfig, WorkerState};
use longview_models::{Encoder, ModelDir};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};

/// One request's sequences and where to send their vectors.
pub(crate) struct Job {
    pub sequences: Vec<Vec<u32>>,
    pub reply: oneshot::Sender<Result<Vec<Vec<f32>>, WorkerError>>,
    pub span: tracing::Span,
    pub enqueued: Instant,
}

/// Text the warm-up pass encodes: long enough to exercise real batch shapes.
const WARM_UP_TEXT: &str = "Longview warms the model up before it reports serving, so that the \
first request does not pay for lazy allocation. Quarterly revenue rose while costs fell.";

pub(crate) fn run_model_thread(
    mut config: WorkerConfig,
    state: watch::Sender<WorkerState>,
    mut queue: mpsc::Receiver<Job>,
) {
    if let Some(signal) = config.start_signal.take() {
        // A dropped sender means "go ahead" as much as a sent signal does.
        let _ = signal.blocking_recv();
    }
    let encoder = match load_and_warm(&config) {
        Ok(encoder) => encoder,
        Err(err) => return fail(err, &state, queue),
    };
    let loaded = Loaded {
        info: encoder.info().clone(),
        tokenizer: encoder.tokenizer(),
    };
    state.send_replace(WorkerState::Ready(Arc::new(loaded)));
    while let Some(job) = queue.blocking_recv() {
        serve(&encoder, job, config.max_batch_tokens);
    }
    tracing::info!("model thread stopped: no handles left");
}

fn load_and_warm(config: &WorkerConfig) -> Result<Encoder, WorkerError> {
    let started = Instant::now();
    let dir = ModelDir::open(&config.model_dir)?;
    let encoder = Encoder::load(&dir, config.device)?;
    let load_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    warm_up(&encoder)?;
    let info = encoder.info();
    tracing::info!(
        model = %info.name, version = %info.version, device = %info.device, dtype = %info.dtype,
        dimensions = info.dimensions, max_positions = info.max_positions, load_seconds,
        warm_up_seconds = started.elapsed().as_secs_f64(), "model loaded and warm"
    );
    Ok(encoder)
}

/// One real forward pass over a short and a long sequence in one padded batch.
fn warm_up(encoder: &Encoder) -> Result<(), WorkerError> {
    let tokens = encoder.tokenizer().tokenize(WARM_UP_TEXT)?;
    let short = &tokens.ids[..tokens.ids.len().min(8)];
    encoder.encode(&[short, &tokens.ids])?;
    Ok(())
}

fn fail(err: WorkerError, state: &watch::Sender<WorkerState>, mut queue: mpsc::Receiver<Job>) {
    let reason: Arc<str> = err.to_string().into();
    tracing::error!(error = %reason, "model failed to load");
    state.send_replace(WorkerState::Failed(reason.clone()));
    while let Some(job) = queue.blocking_recv() {
        let _ = job.reply.send(Err(WorkerError::Failed(reason.to_string())));
    }
}

fn serve(encoder: &Encoder, job: Job, max_batch_tokens: usize) {
    let _entered = job.span.enter();
    let queue_seconds = job.enqueued.elapsed().as_secs_f64();
    let started = Instant::now();
    let result = encode_job(encoder, &job.sequences, max_batch_tokens);
    tracing::debug!(
        sequences = job.sequences.len(),
        tokens = job.sequences.iter().map(Vec::len).sum::<usize>(),
        queue_seconds,
        inference_seconds = started.elapsed().as_secs_f64(),
        "encoded"
    );
    // The caller may have gone away (deadline, cancel); nothing to do then.
    let _ = job.reply.send(result);
}

/// Encodes in length-sorted batches under the token budget, returning vectors in the
/// caller's order.
fn encode_job(
    encoder: &Encoder,
    sequences: &[Vec<u32>],
    max_batch_tokens: usize,
) -> Result<Vec<Vec<f32>>, WorkerError> {
    let special = encoder.info().special_tokens;
    let lengths: Vec<usize> = sequences.iter().map(|s| s.len() + special).collect();
    let (order, batches) = plan_batches(&lengths, max_batch_tokens);
    let mut vectors = vec![Vec::new(); sequences.len()];
    for batch in batches {
        let members = &order[batch];
        let inputs: Vec<&[u32]> = members.iter().map(|&i| sequences[i].as_slice()).collect();
        for (&index, vector) in members.iter().zip(encoder.encode(&inputs)?) {
            vectors[index] = vector;
        }
    }
    Ok(vectors)
}
