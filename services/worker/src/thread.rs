//! The model thread: loads the model, warms it up, then serves jobs until every handle
//! is dropped.

use crate::WorkerError;
use crate::batch::plan_batches;
use crate::worker::{Loaded, WorkerConfig, WorkerState};
use longview_models::{Encoder, ModelDir, Output};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::{oneshot, watch};

/// One request's sequences and where to send their vectors.
pub(crate) struct Job {
    pub sequences: Vec<Vec<u32>>,
    pub output: Output,
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
    queue: Receiver<Job>,
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
    let batching = Batching {
        max_batch_tokens: config.max_batch_tokens,
        max_wait: config.max_batch_wait,
    };
    while let Ok(first) = queue.recv() {
        let mut jobs = if config.dynamic_batching {
            gather(first, &queue, &batching)
        } else {
            vec![first]
        };
        crate::metrics::jobs_taken(jobs.len());
        // A caller whose deadline passed has dropped its reply: skip its work.
        let waiting = jobs.len();
        jobs.retain(|job| !job.reply.is_closed());
        crate::metrics::jobs_abandoned(waiting - jobs.len());
        serve(&encoder, jobs, batching.max_batch_tokens);
    }
    tracing::info!("model thread stopped: no handles left");
}

fn load_and_warm(config: &WorkerConfig) -> Result<Encoder, WorkerError> {
    let started = Instant::now();
    let dir = ModelDir::open(&config.model_dir)?;
    let encoder = Encoder::load(&dir, config.device, config.backend)?;
    let load_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    warm_up(&encoder)?;
    let info = encoder.info();
    tracing::info!(
        model = %info.name, version = %info.version, device = %info.device, dtype = %info.dtype, backend = %info.backend,
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

fn fail(err: WorkerError, state: &watch::Sender<WorkerState>, queue: Receiver<Job>) {
    let reason: Arc<str> = err.to_string().into();
    tracing::error!(error = %reason, "model failed to load");
    state.send_replace(WorkerState::Failed(reason.clone()));
    while let Ok(job) = queue.recv() {
        let _ = job.reply.send(Err(WorkerError::Failed(reason.to_string())));
    }
}

/// Limits of one gathering of jobs.
struct Batching {
    max_batch_tokens: usize,
    max_wait: Duration,
}

/// Dynamic batching: after the first job, keeps taking queued jobs until their sequences
/// fill the token budget or `max_wait` has passed since the first arrived, so that many
/// small concurrent requests share forward passes.
fn gather(first: Job, queue: &Receiver<Job>, batching: &Batching) -> Vec<Job> {
    let deadline = first.enqueued + batching.max_wait;
    let mut tokens = job_tokens(&first);
    let mut jobs = vec![first];
    while tokens < batching.max_batch_tokens {
        let next = match queue.try_recv() {
            Ok(job) => Ok(job),
            Err(TryRecvError::Empty) => {
                queue.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(job) => {
                tokens += job_tokens(&job);
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    jobs
}

fn job_tokens(job: &Job) -> usize {
    job.sequences.iter().map(Vec::len).sum()
}

/// Encodes every sequence of `jobs` in shared length-sorted batches, then answers each
/// job with its own vectors in its own order.
/// Serves gathered jobs, one group per kind of output asked for.
fn serve(encoder: &Encoder, mut jobs: Vec<Job>, max_batch_tokens: usize) {
    while let Some(output) = jobs.first().map(|job| job.output) {
        let (group, rest): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|job| job.output == output);
        serve_group(encoder, group, output, max_batch_tokens);
        jobs = rest;
    }
}

fn serve_group(encoder: &Encoder, jobs: Vec<Job>, output: Output, max_batch_tokens: usize) {
    let started = Instant::now();
    let sequences: Vec<&[u32]> = jobs
        .iter()
        .flat_map(|job| job.sequences.iter().map(Vec::as_slice))
        .collect();
    let result = encode_all(encoder, &sequences, output, max_batch_tokens);
    let inference_seconds = started.elapsed().as_secs_f64();
    let mut vectors =
        match result {
            Ok(vectors) => vectors.into_iter(),
            Err(err) => {
                let reason = err.to_string();
                tracing::error!(error = %reason, jobs = jobs.len(), "encoding failed");
                for job in jobs {
                    let _ = job.reply.send(Err(WorkerError::Model(
                        longview_models::ModelError::Fetch(reason.clone()),
                    )));
                }
                return;
            }
        };
    let job_count = jobs.len();
    for job in jobs {
        let _entered = job.span.enter();
        let own: Vec<Vec<f32>> = vectors.by_ref().take(job.sequences.len()).collect();
        tracing::debug!(
            sequences = job.sequences.len(),
            tokens = job_tokens(&job),
            shared_with = job_count - 1,
            queue_seconds = (started - job.enqueued).as_secs_f64(),
            inference_seconds,
            "encoded"
        );
        // The caller may have gone away (deadline, cancel); nothing to do then.
        let _ = job.reply.send(Ok(own));
    }
}

/// Encodes in length-sorted batches under the token budget, returning vectors in the
/// order given.
fn encode_all(
    encoder: &Encoder,
    sequences: &[&[u32]],
    output: Output,
    max_batch_tokens: usize,
) -> Result<Vec<Vec<f32>>, WorkerError> {
    let special = encoder.info().special_tokens;
    let lengths: Vec<usize> = sequences.iter().map(|s| s.len() + special).collect();
    let (order, batches) = plan_batches(&lengths, max_batch_tokens);
    let mut vectors = vec![Vec::new(); sequences.len()];
    for batch in batches {
        let members = &order[batch];
        let inputs: Vec<&[u32]> = members.iter().map(|&i| sequences[i]).collect();
        let started = Instant::now();
        let encoded = encoder.encode_as(&inputs, output)?;
        let batch_lengths: Vec<usize> = members.iter().map(|&i| lengths[i]).collect();
        crate::metrics::forward_pass(&batch_lengths, started.elapsed().as_secs_f64());
        for (&index, vector) in members.iter().zip(encoded) {
            vectors[index] = vector;
        }
    }
    Ok(vectors)
}
