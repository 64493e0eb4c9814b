//! A remote generator speaking OpenAI's chat completions API with server-sent events:
//! vLLM, TGI, llama.cpp's server and hosted endpoints. Requests are bounded in number
//! (more are refused with a retry hint) and in time (connect, idle between events, total).

use crate::WorkerError;
use crate::generator::{GenerationEvent, GeneratorState, TextStream};
use crate::openai_wire::{ChatRequest, Chunk, refusal, usage_or_counted};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use longview_models::{ChatMessage, GenerateParams, GenerationStats, GeneratorInfo};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Where and how to reach an OpenAI-compatible server.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// The API root as OpenAI clients take it, e.g. `http://vllm:8000/v1`.
    pub base_url: String,
    /// The model name the server serves.
    pub model: String,
    /// Sent as a bearer token when set.
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// Longest silence between two events of a stream (and before the headers).
    pub idle_timeout: Duration,
    /// Longest whole answer.
    pub request_timeout: Duration,
    /// Answers in flight at once; more are refused with a retry hint.
    pub max_concurrent: usize,
    /// The served model's context, when known (the API does not say).
    pub context_tokens: Option<usize>,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            max_concurrent: 16,
            context_tokens: None,
        }
    }
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_concurrent", &self.max_concurrent)
            .finish()
    }
}

/// A cloneable handle to a remote generator.
#[derive(Clone, Debug)]
pub struct OpenAiGenerator {
    client: reqwest::Client,
    endpoint: Arc<str>,
    config: Arc<OpenAiConfig>,
    permits: Arc<Semaphore>,
    state: watch::Receiver<GeneratorState>,
    // Kept so the state channel stays open as long as a handle exists.
    _state: Arc<watch::Sender<GeneratorState>>,
}

impl OpenAiGenerator {
    pub fn new(config: OpenAiConfig) -> Result<Self, WorkerError> {
        let base = config.base_url.trim_end_matches('/');
        let url = reqwest::Url::parse(base).map_err(|e| {
            WorkerError::Failed(format!(
                "generator URL {:?} is not a URL: {e}",
                config.base_url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WorkerError::Failed(format!(
                "generator URL {:?} must be http or https",
                config.base_url
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.idle_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| WorkerError::Failed(format!("cannot build the HTTP client: {e}")))?;
        let info = GeneratorInfo {
            name: config.model.clone(),
            version: format!("openai-compatible {base}"),
            context_tokens: config.context_tokens,
            device: "remote".into(),
        };
        let (state_tx, state) = watch::channel(GeneratorState::Ready(Arc::new(info)));
        Ok(Self {
            client,
            endpoint: format!("{base}/chat/completions").into(),
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            config: Arc::new(config),
            state,
            _state: Arc::new(state_tx),
        })
    }

    pub fn watch_state(&self) -> watch::Receiver<GeneratorState> {
        self.state.clone()
    }

    /// Sends the request and waits for the response headers, so refusals (bad model
    /// name, credentials, overload) come back here; the body streams afterwards.
    pub(crate) async fn generate(
        &self,
        messages: Vec<ChatMessage>,
        params: GenerateParams,
    ) -> Result<TextStream, WorkerError> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            WorkerError::Busy(format!(
                "{} answers already in flight to the generator at {}; retry shortly",
                self.config.max_concurrent, self.endpoint
            ))
        })?;
        let body = ChatRequest::new(&self.config.model, &messages, &params);
        let mut request = self.client.post(&*self.endpoint).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(refusal(&self.endpoint, status.as_u16(), &text));
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let reader = StreamReader {
            endpoint: self.endpoint.clone(),
            idle_timeout: self.config.idle_timeout,
            events,
            started,
            _permit: permit,
        };
        tokio::spawn(reader.run(response));
        Ok(TextStream::new(UnboundedReceiverStream::new(receiver)))
    }

    fn unreachable(&self, err: &reqwest::Error) -> WorkerError {
        unreachable(&self.endpoint, err)
    }
}

fn unreachable(endpoint: &str, err: &reqwest::Error) -> WorkerError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "failed"
    };
    // reqwest's Display hides the cause (connection refused, DNS); show the chain.
    let mut cause = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        cause = format!("{cause}: {inner}");
        source = inner.source();
    }
    WorkerError::Unreachable(format!("generator at {endpoint} {what}: {cause}"))
}

type Events = mpsc::UnboundedSender<Result<GenerationEvent, WorkerError>>;

/// Reads one answer's events and forwards them until the end, an error, or the caller
/// dropping its stream (which drops the connection, so the server stops too).
struct StreamReader {
    endpoint: Arc<str>,
    idle_timeout: Duration,
    events: Events,
    started: Instant,
    _permit: OwnedSemaphorePermit,
}

impl StreamReader {
    async fn run(self, response: reqwest::Response) {
        let outcome = tokio::select! {
            outcome = self.read(response) => outcome,
            () = self.events.closed() => {
                tracing::debug!(endpoint = %self.endpoint, "remote answer cancelled by the caller");
                return;
            }
        };
        let _ = self.events.send(outcome.map(GenerationEvent::Finished));
    }

    async fn read(&self, response: reqwest::Response) -> Result<GenerationStats, WorkerError> {
        let mut sse = response.bytes_stream().eventsource();
        let mut counted = 0usize;
        let mut first_token: Option<Instant> = None;
        let (mut finish, mut usage) = (None, None);
        loop {
            let event = tokio::time::timeout(self.idle_timeout, sse.next()).await;
            let event = match event {
                Err(_) => return Err(self.broken(format!("silent for {:?}", self.idle_timeout))),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(self.broken(e.to_string())),
                Ok(Some(Ok(event))) => event,
            };
            if event.data.trim() == "[DONE]" {
                break;
            }
            let chunk = Chunk::parse(&event.data).map_err(|e| self.broken(e))?;
            if let Some(text) = chunk.content.filter(|t| !t.is_empty()) {
                first_token.get_or_insert_with(Instant::now);
                counted += 1;
                if self.events.send(Ok(GenerationEvent::Text(text))).is_err() {
                    return Err(WorkerError::Stopped);
                }
            }
            finish = chunk.finish_reason.or(finish);
            usage = chunk.usage.or(usage);
        }
        let first = first_token.unwrap_or_else(Instant::now);
        let (prompt_tokens, generated_tokens) = usage_or_counted(usage, counted);
        Ok(GenerationStats {
            prompt_tokens,
            generated_tokens,
            stop_reason: crate::openai_wire::stop_reason(finish.as_deref()),
            prompt_seconds: (first - self.started).as_secs_f64(),
            generation_seconds: first.elapsed().as_secs_f64(),
        })
    }

    fn broken(&self, why: String) -> WorkerError {
        WorkerError::Remote(format!(
            "the answer stream from {} broke: {why}",
            self.endpoint
        ))
    }
}
