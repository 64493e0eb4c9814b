//! A local GGUF chat model on its own OS thread behind a bounded queue: callers render and
//! tokenize the prompt themselves (so a bad conversation never waits for the model), then
//! queue it; the thread generates one answer at a time, streaming pieces back, and stops
//! at the next token once the caller has dropped its stream.

use crate::WorkerError;
use crate::generator::{GenerationEvent, GeneratorState, TextStream};
use longview_models::{
    ChatMessage, ChatPrompter, DeviceKind, GenerateParams, LlamaGenerator, ModelError, StopReason,
};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

/// How a local generator loads and queues.
#[derive(Debug)]
pub struct LocalGeneratorConfig {
    /// A llama-architecture `.gguf` file, or a directory holding exactly one.
    pub model: PathBuf,
    pub device: DeviceKind,
    /// Answers that may wait for the model; more are refused with `QueueFull`. Each one
    /// takes seconds, so a short queue sheds load before clients time out.
    pub queue_capacity: usize,
    /// When set, loading waits until this fires (start-up ordering, tests).
    pub start_signal: Option<oneshot::Receiver<()>>,
}

impl LocalGeneratorConfig {
    pub fn new(model: PathBuf) -> Self {
        Self {
            model,
            device: DeviceKind::Cpu,
            queue_capacity: 8,
            start_signal: None,
        }
    }
}

/// Work counters of the model thread, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GeneratorCounters {
    /// Answers served to the end (or to an error).
    pub answers: u64,
    /// Answers abandoned by their caller, queued or mid-way.
    pub cancelled: u64,
    /// Tokens generated, cancelled answers included.
    pub tokens_generated: u64,
}

#[derive(Debug, Default)]
struct Counters {
    answers: AtomicU64,
    cancelled: AtomicU64,
    tokens_generated: AtomicU64,
}

type Events = mpsc::UnboundedSender<Result<GenerationEvent, WorkerError>>;

struct Job {
    prompt: Vec<u32>,
    params: GenerateParams,
    events: Events,
    span: tracing::Span,
    enqueued: Instant,
}

/// A cloneable handle to the generator thread.
#[derive(Clone, Debug)]
pub struct LocalGenerator {
    jobs: SyncSender<Job>,
    state: watch::Receiver<GeneratorState>,
    prompter: Arc<OnceLock<Arc<ChatPrompter>>>,
    counters: Arc<Counters>,
    capacity: usize,
}

impl LocalGenerator {
    /// Starts the model thread; loading and warm-up happen there.
    pub fn spawn(config: LocalGeneratorConfig) -> Result<Self, WorkerError> {
        let capacity = config.queue_capacity.max(1);
        let (jobs, queue) = sync_channel(capacity);
        let (state_tx, state) = watch::channel(GeneratorState::Loading);
        let handle = Self {
            jobs,
            state,
            prompter: Arc::default(),
            counters: Arc::default(),
            capacity,
        };
        let thread = ModelThread {
            state: state_tx,
            prompter: handle.prompter.clone(),
            counters: handle.counters.clone(),
        };
        std::thread::Builder::new()
            .name("longview-generator".into())
            .spawn(move || thread.run(config, queue))
            .map_err(|e| WorkerError::Failed(format!("cannot start the generator thread: {e}")))?;
        Ok(handle)
    }

    pub fn watch_state(&self) -> watch::Receiver<GeneratorState> {
        self.state.clone()
    }

    pub fn counters(&self) -> GeneratorCounters {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        GeneratorCounters {
            answers: read(&self.counters.answers),
            cancelled: read(&self.counters.cancelled),
            tokens_generated: read(&self.counters.tokens_generated),
        }
    }

    /// The prompt's token count for `messages` as this model reads them (template
    /// included), so a caller can budget passages before asking.
    pub async fn prompt_tokens(&self, messages: Vec<ChatMessage>) -> Result<usize, WorkerError> {
        Ok(self.prompt_ids(messages).await?.len())
    }

    pub(crate) async fn generate(
        &self,
        messages: Vec<ChatMessage>,
        params: GenerateParams,
    ) -> Result<TextStream, WorkerError> {
        let prompt = self.prompt_ids(messages).await?;
        let context = self.context_tokens()?;
        if prompt.len() >= context {
            return Err(WorkerError::Rejected(format!(
                "the prompt has {} tokens, over the model's limit of {} (context {context} \
                 tokens, prompt and answer together); send fewer or shorter passages",
                prompt.len(),
                context - 1
            )));
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let job = Job {
            prompt,
            params,
            events,
            span: tracing::Span::current(),
            enqueued: Instant::now(),
        };
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => WorkerError::QueueFull {
                capacity: self.capacity,
            },
            TrySendError::Disconnected(_) => WorkerError::Stopped,
        })?;
        Ok(TextStream::new(UnboundedReceiverStream::new(receiver)))
    }

    async fn prompt_ids(&self, messages: Vec<ChatMessage>) -> Result<Vec<u32>, WorkerError> {
        self.context_tokens()?;
        let prompter = self.prompter.get().cloned().ok_or(WorkerError::Loading)?;
        // Rendering and tokenizing a long conversation takes a while: off the runtime.
        let ids = tokio::task::spawn_blocking(move || prompter.prompt_ids(&messages))
            .await
            .map_err(|_| WorkerError::Stopped)?;
        ids.map_err(|err| match err {
            // The template refusing the conversation is the caller's to fix.
            ModelError::Template(message) => WorkerError::Rejected(message),
            other => WorkerError::Model(other),
        })
    }

    fn context_tokens(&self) -> Result<usize, WorkerError> {
        match &*self.state.borrow() {
            GeneratorState::Ready(info) => Ok(info.context_tokens.unwrap_or(usize::MAX)),
            GeneratorState::Loading => Err(WorkerError::Loading),
            GeneratorState::Failed(reason) => Err(WorkerError::Failed(reason.to_string())),
        }
    }
}

/// What the model thread owns besides the model.
struct ModelThread {
    state: watch::Sender<GeneratorState>,
    prompter: Arc<OnceLock<Arc<ChatPrompter>>>,
    counters: Arc<Counters>,
}

/// A short chat turn generated before reporting ready, so the first request does not pay
/// for lazy allocation.
const WARM_UP_TOKENS: usize = 4;

impl ModelThread {
    fn run(self, mut config: LocalGeneratorConfig, queue: Receiver<Job>) {
        if let Some(signal) = config.start_signal.take() {
            // A dropped sender means "go ahead" as much as a sent signal does.
            let _ = signal.blocking_recv();
        }
        let mut model = match load_and_warm(&config) {
            Ok(model) => model,
            Err(err) => return self.fail(err, queue),
        };
        let _ = self.prompter.set(model.prompter());
        let info = Arc::new(model.info().clone());
        self.state.send_replace(GeneratorState::Ready(info));
        while let Ok(job) = queue.recv() {
            self.serve(&mut model, job);
        }
        tracing::info!("generator thread stopped: no handles left");
    }

    fn serve(&self, model: &mut LlamaGenerator, job: Job) {
        let _entered = job.span.enter();
        if job.events.is_closed() {
            self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("answer cancelled while queued");
            return;
        }
        let queue_seconds = job.enqueued.elapsed().as_secs_f64();
        let result = model.generate(&job.prompt, &job.params, |_, piece| {
            self.counters
                .tokens_generated
                .fetch_add(1, Ordering::Relaxed);
            let gone = match piece.is_empty() {
                true => job.events.is_closed(),
                false => job
                    .events
                    .send(Ok(GenerationEvent::Text(piece.into())))
                    .is_err(),
            };
            if gone {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let event = match result {
            Ok(stats) => {
                let counter = match stats.stop_reason {
                    StopReason::Cancelled => &self.counters.cancelled,
                    _ => &self.counters.answers,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    prompt_tokens = stats.prompt_tokens,
                    generated_tokens = stats.generated_tokens,
                    stop = stats.stop_reason.as_str(),
                    queue_seconds,
                    prompt_seconds = stats.prompt_seconds,
                    generation_seconds = stats.generation_seconds,
                    "answer generated"
                );
                Ok(GenerationEvent::Finished(stats))
            }
            Err(err) => {
                self.counters.answers.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %err, "generation failed");
                Err(WorkerError::Model(err))
            }
        };
        let _ = job.events.send(event);
    }

    fn fail(&self, err: WorkerError, queue: Receiver<Job>) {
        let reason: Arc<str> = err.to_string().into();
        tracing::error!(error = %reason, "generator failed to load");
        self.state
            .send_replace(GeneratorState::Failed(reason.clone()));
        while let Ok(job) = queue.recv() {
            let _ = job
                .events
                .send(Err(WorkerError::Failed(reason.to_string())));
        }
    }
}

fn load_and_warm(config: &LocalGeneratorConfig) -> Result<LlamaGenerator, WorkerError> {
    let started = Instant::now();
    let mut model = LlamaGenerator::load(&config.model, config.device)?;
    let load_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let prompt = model
        .prompter()
        .prompt_ids(&[ChatMessage::user("Hello!")])?;
    let params = GenerateParams {
        max_new_tokens: WARM_UP_TOKENS,
        ..GenerateParams::default()
    };
    model.generate(&prompt, &params, |_, _| ControlFlow::Continue(()))?;
    let info = model.info();
    tracing::info!(
        model = %info.name, version = %info.version, device = %info.device,
        context_tokens = info.context_tokens, load_seconds,
        warm_up_seconds = started.elapsed().as_secs_f64(), "generator loaded and warm"
    );
    Ok(model)
}
