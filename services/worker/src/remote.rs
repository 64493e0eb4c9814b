//! Model workers in other processes (`--target worker`), reached over the internal gRPC
//! API. A task role holds a [`RemoteWorkers`] pool behind the same [`crate::Worker`] handle
//! as an in-process model: it fetches the model's tokenizer once and tokenizes locally, so
//! only token ids and vectors cross the network.

mod members;

use crate::worker::{Loaded, WorkerState};
use crate::{Output, WorkerError};
use longview_models::{ModelInfo, TextTokenizer};
use longview_proto::worker::v1 as pb;
use members::{Member, Members};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tonic::{Code, Status};

/// Where the workers are and how patient to be with them.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// `host:port` or `http://host:port`, one per worker.
    pub endpoints: Vec<String>,
    pub connect_timeout: Duration,
    /// Per call to one worker; a slower worker counts as unavailable for that call.
    pub request_timeout: Duration,
    /// Sequences per Encode call (the worker refuses more than 4,096).
    pub max_sequences_per_call: usize,
    /// Largest gRPC message either side accepts.
    pub max_message_bytes: usize,
}

impl RemoteConfig {
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(120),
            max_sequences_per_call: 1024,
            max_message_bytes: 64 << 20,
        }
    }
}

/// The workers a task role balances over: round robin, and on UNAVAILABLE (a worker
/// stopped, restarting or still loading) or RESOURCE_EXHAUSTED (its queue is full) the
/// same call goes to the next one.
pub(crate) struct RemoteWorkers {
    members: Members,
    next: AtomicUsize,
    max_sequences_per_call: usize,
}

/// Pause between rounds over every worker while looking for a ready one.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Rounds over every worker before a call gives up.
const ROUNDS: usize = 3;
/// How often worker names are resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(10);

impl RemoteWorkers {
    /// Builds the pool (connections are made lazily) and starts a task that publishes
    /// Ready once a worker has answered with its model and tokenizer.
    pub(crate) fn connect(
        config: &RemoteConfig,
    ) -> Result<(Arc<Self>, watch::Receiver<WorkerState>), WorkerError> {
        let pool = Arc::new(Self {
            members: Members::new(config)?,
            next: AtomicUsize::new(0),
            max_sequences_per_call: config.max_sequences_per_call.max(1),
        });
        let (state_tx, state) = watch::channel(WorkerState::Loading);
        tokio::spawn(discover(pool.clone(), state_tx));
        tokio::spawn(keep_resolving(Arc::downgrade(&pool)));
        Ok((pool, state))
    }

    /// Encodes on whichever worker answers, in calls of bounded size, in order.
    pub(crate) async fn encode_as(
        &self,
        sequences: Vec<Vec<u32>>,
        output: Output,
    ) -> Result<Vec<Vec<f32>>, WorkerError> {
        let mut vectors = Vec::with_capacity(sequences.len());
        let mut sequences = sequences.into_iter().peekable();
        while sequences.peek().is_some() {
            let part: Vec<pb::TokenSequence> = sequences
                .by_ref()
                .take(self.max_sequences_per_call)
                .map(|ids| pb::TokenSequence {
                    ids,
                    offsets: Vec::new(),
                })
                .collect();
            let request = pb::EncodeRequest {
                sequences: part,
                output: output_pb(output) as i32,
            };
            let response = self.call(request).await?;
            vectors.extend(response.vectors.into_iter().map(|v| v.values));
        }
        Ok(vectors)
    }

    async fn call(&self, request: pb::EncodeRequest) -> Result<pb::EncodeResponse, WorkerError> {
        let mut last = None;
        for round in 0..ROUNDS {
            if round > 0 {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            let members = self.members.snapshot();
            for _ in 0..members.len() {
                let member = self.pick(&members);
                let mut client = member.client.clone();
                match client.encode(request.clone()).await {
                    Ok(response) => return Ok(response.into_inner()),
                    Err(status) if retryable(&status) => {
                        tracing::warn!(worker = %member.label, code = ?status.code(), error = %status.message(), "worker call failed; trying the next worker");
                        last = Some(status);
                    }
                    Err(status) => return Err(answer_error(status)),
                }
            }
        }
        Err(exhausted(last))
    }

    fn pick<'a>(&self, members: &'a [Arc<Member>]) -> &'a Member {
        let at = self.next.fetch_add(1, Ordering::Relaxed);
        &members[at % members.len()]
    }
}

/// Follows the workers behind the configured names until the pool is dropped.
async fn keep_resolving(pool: std::sync::Weak<RemoteWorkers>) {
    loop {
        tokio::time::sleep(RESOLVE_EVERY).await;
        match pool.upgrade() {
            Some(pool) => pool.members.refresh().await,
            None => return,
        }
    }
}

/// Asks the workers in turn for their model and tokenizer until one answers, then
/// publishes Ready. Workers still loading answer UNAVAILABLE, so this also waits for warm-up.
async fn discover(pool: Arc<RemoteWorkers>, state: watch::Sender<WorkerState>) {
    let mut pause = RETRY_PAUSE;
    loop {
        pool.members.refresh().await;
        let members = pool.members.snapshot();
        for member in members.iter() {
            match fetch_loaded(member).await {
                Ok(loaded) => {
                    tracing::info!(worker = %member.label, model = %loaded.info.name, version = %loaded.info.version, workers = members.len(), "remote model worker ready");
                    state.send_replace(WorkerState::Ready(Arc::new(loaded)));
                    return;
                }
                Err(err) => {
                    tracing::info!(worker = %member.label, error = %err, "waiting for model worker")
                }
            }
        }
        if state.is_closed() {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

async fn fetch_loaded(member: &Member) -> Result<Loaded, WorkerError> {
    let request = pb::InfoRequest {
        include_tokenizer: true,
    };
    let info = member
        .client
        .clone()
        .info(request)
        .await
        .map_err(answer_error)?
        .into_inner();
    let tokenizer = TextTokenizer::from_json(info.tokenizer_json.clone().into())?;
    Ok(Loaded {
        info: model_info(info)?,
        tokenizer: Arc::new(tokenizer),
    })
}

fn model_info(info: pb::InfoResponse) -> Result<ModelInfo, WorkerError> {
    let backend = info
        .backend
        .parse()
        .map_err(|e: String| WorkerError::Unreachable(format!("worker answered oddly: {e}")))?;
    Ok(ModelInfo {
        name: info.model_name,
        version: info.model_version,
        dimensions: info.dimensions as usize,
        max_positions: info.max_positions as usize,
        trained_seq_len: info.trained_seq_len as usize,
        special_tokens: info.special_tokens as usize,
        device: info.device,
        dtype: info.dtype,
        backend,
        labels: (!info.labels.is_empty()).then_some(info.labels),
    })
}

fn output_pb(output: Output) -> pb::Output {
    match output {
        Output::Native => pb::Output::Native,
        Output::Embedding => pb::Output::Embedding,
        Output::FirstState => pb::Output::FirstState,
    }
}

/// Codes that say "this worker, not this request": another worker may well succeed.
fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded | Code::Unknown
    )
}

fn exhausted(last: Option<Status>) -> WorkerError {
    match last {
        Some(status) if status.code() == Code::ResourceExhausted => {
            WorkerError::Busy(format!("every model worker is busy: {}", status.message()))
        }
        Some(status) => WorkerError::Unreachable(format!(
            "no model worker answered; the last said: {}",
            status.message()
        )),
        None => WorkerError::Unreachable("no model worker answered".into()),
    }
}

/// A worker's refusal, as the caller's error.
fn answer_error(status: Status) -> WorkerError {
    match status.code() {
        Code::InvalidArgument => WorkerError::Rejected(status.message().to_string()),
        Code::ResourceExhausted => WorkerError::Busy(status.message().to_string()),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown => {
            WorkerError::Unreachable(status.message().to_string())
        }
        _ => WorkerError::Remote(format!("{:?}: {}", status.code(), status.message())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_side_failures_are_retried_and_request_errors_are_not() {
        assert!(retryable(&Status::unavailable("stopping")));
        assert!(retryable(&Status::resource_exhausted("queue full")));
        assert!(!retryable(&Status::invalid_argument("600 tokens")));
        assert!(matches!(
            answer_error(Status::invalid_argument("too long")),
            WorkerError::Rejected(m) if m == "too long"
        ));
    }

    #[test]
    fn a_busy_pool_says_so_and_an_unreachable_one_too() {
        let busy = exhausted(Some(Status::resource_exhausted("queue full")));
        assert!(matches!(busy, WorkerError::Busy(_)));
        let gone = exhausted(Some(Status::unavailable("connection refused")));
        assert!(gone.to_string().contains("connection refused"), "{gone}");
    }

    #[tokio::test]
    async fn an_empty_endpoint_list_is_refused() {
        let err = RemoteWorkers::connect(&RemoteConfig::new(Vec::new())).err();
        assert!(matches!(err, Some(WorkerError::Unreachable(_))));
    }
}
