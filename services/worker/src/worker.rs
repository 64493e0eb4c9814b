//! The handle callers hold, and the state it publishes.

use crate::WorkerError;
use crate::remote::{RemoteConfig, RemoteWorkers};
use crate::thread::{Job, run_model_thread};
use longview_core::TokenizedText;
use longview_models::{Backend, DeviceKind, ModelInfo, Output, TextTokenizer};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::{oneshot, watch};

/// How a worker loads and runs its model.
#[derive(Debug)]
pub struct WorkerConfig {
    pub model_dir: PathBuf,
    pub device: DeviceKind,
    pub backend: Backend,
    /// Jobs that may wait for the model thread; more are refused with `QueueFull`.
    pub queue_capacity: usize,
    /// Upper bound on padded tokens (sequences × longest) per forward pass.
    pub max_batch_tokens: usize,
    /// Share forward passes between concurrent requests.
    pub dynamic_batching: bool,
    /// How long the first request of a batch may wait for others to join it.
    pub max_batch_wait: Duration,
    /// When set, loading waits until this fires: lets an orchestrator (or a test) order
    /// start-up and observe the not-yet-serving state.
    pub start_signal: Option<oneshot::Receiver<()>>,
}

impl WorkerConfig {
    pub fn new(model_dir: PathBuf) -> Self {
        Self {
            model_dir,
            device: DeviceKind::Cpu,
            backend: Backend::Auto,
            queue_capacity: 256,
            max_batch_tokens: 8192,
            dynamic_batching: true,
            max_batch_wait: Duration::from_millis(2),
            start_signal: None,
        }
    }
}

/// What a ready worker offers besides the queue.
#[derive(Debug)]
pub struct Loaded {
    pub info: ModelInfo,
    pub tokenizer: Arc<TextTokenizer>,
}

/// Published on a watch channel; health checks and request handlers read it.
#[derive(Clone, Debug)]
pub enum WorkerState {
    Loading,
    Ready(Arc<Loaded>),
    Failed(Arc<str>),
}

/// A cloneable handle to a model: a thread in this process, or worker processes reached
/// over the internal API. Callers cannot tell the two apart.
#[derive(Clone)]
pub struct Worker {
    route: Route,
    state: watch::Receiver<WorkerState>,
}

#[derive(Clone)]
enum Route {
    Local {
        jobs: SyncSender<Job>,
        capacity: usize,
    },
    Remote(Arc<RemoteWorkers>),
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let route = match &self.route {
            Route::Local { .. } => "local",
            Route::Remote(_) => "remote",
        };
        f.debug_struct("Worker").field("route", &route).finish()
    }
}

impl Worker {
    /// Starts the model thread; loading and warm-up happen there, so this returns at once.
    pub fn spawn(config: WorkerConfig) -> Result<Self, WorkerError> {
        let capacity = config.queue_capacity.max(1);
        let (jobs, queue) = sync_channel(capacity);
        let (state_tx, state) = watch::channel(WorkerState::Loading);
        std::thread::Builder::new()
            .name("longview-model".into())
            .spawn(move || run_model_thread(config, state_tx, queue))
            .map_err(|e| WorkerError::Failed(format!("cannot start the model thread: {e}")))?;
        Ok(Self {
            route: Route::Local { jobs, capacity },
            state,
        })
    }

    /// A handle to worker processes (`--target worker`) at `config.endpoints`. Must be
    /// called inside a tokio runtime: a task there waits for the first worker to answer.
    pub fn connect(config: &RemoteConfig) -> Result<Self, WorkerError> {
        let (pool, state) = RemoteWorkers::connect(config)?;
        Ok(Self {
            route: Route::Remote(pool),
            state,
        })
    }

    /// Follows the worker's state (loading, ready, failed).
    pub fn watch_state(&self) -> watch::Receiver<WorkerState> {
        self.state.clone()
    }

    /// The loaded model, or why there is none yet.
    pub fn loaded(&self) -> Result<Arc<Loaded>, WorkerError> {
        match &*self.state.borrow() {
            WorkerState::Ready(loaded) => Ok(loaded.clone()),
            WorkerState::Loading => Err(WorkerError::Loading),
            WorkerState::Failed(reason) => Err(WorkerError::Failed(reason.to_string())),
        }
    }

    /// Waits until the model is ready (or failed).
    pub async fn ready(&self) -> Result<Arc<Loaded>, WorkerError> {
        let mut state = self.state.clone();
        let ready = state
            .wait_for(|s| !matches!(s, WorkerState::Loading))
            .await
            .map_err(|_| WorkerError::Stopped)?;
        drop(ready);
        self.loaded()
    }

    /// Tokenizes texts off the async runtime (tokenizing a long document takes a while).
    pub async fn tokenize(
        &self,
        texts: Arc<Vec<String>>,
    ) -> Result<Vec<TokenizedText>, WorkerError> {
        let tokenizer = self.loaded()?.tokenizer.clone();
        let job = move || {
            texts
                .iter()
                .map(|text| tokenizer.tokenize(text))
                .collect::<Result<Vec<_>, _>>()
        };
        let tokenized = tokio::task::spawn_blocking(job)
            .await
            .map_err(|_| WorkerError::Stopped)?;
        Ok(tokenized?)
    }

    /// Encodes content token sequences into vectors, in the order given.
    pub async fn encode(&self, sequences: Vec<Vec<u32>>) -> Result<Vec<Vec<f32>>, WorkerError> {
        self.encode_as(sequences, Output::Native).await
    }

    /// Encodes content token sequences, returning `output` for each, in the order given.
    pub async fn encode_as(
        &self,
        sequences: Vec<Vec<u32>>,
        output: Output,
    ) -> Result<Vec<Vec<f32>>, WorkerError> {
        self.loaded()?;
        let (jobs, capacity) = match &self.route {
            Route::Local { jobs, capacity } => (jobs, *capacity),
            Route::Remote(pool) => return pool.encode_as(sequences, output).await,
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            sequences,
            output,
            reply,
            span: tracing::Span::current(),
            enqueued: Instant::now(),
        };
        jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => WorkerError::QueueFull { capacity },
            TrySendError::Disconnected(_) => WorkerError::Stopped,
        })?;
        crate::metrics::job_queued();
        answer.await.map_err(|_| WorkerError::Stopped)?
    }
}
