//! The answer generator a task service holds: one enum over a local GGUF model on its own
//! thread and a remote OpenAI-compatible server, with the same streaming interface.
//!
//! ```no_run
//! # async fn answer(generator: longview_worker::Generator) -> Result<(), longview_worker::WorkerError> {
//! use longview_worker::{ChatMessage, GenerateParams, GenerationEvent};
//! let messages = vec![
//!     ChatMessage::system("Answer from the passages only."),
//!     ChatMessage::user("Passages: ...\n\nQuestion: who won?"),
//! ];
//! let mut stream = generator.generate(messages, GenerateParams::default()).await?;
//! while let Some(event) = stream.next().await {
//!     match event? {
//!         GenerationEvent::Text(piece) => print!("{piece}"),
//!         GenerationEvent::Finished(stats) => println!("\n{} tokens", stats.generated_tokens),
//!     }
//! }
//! # Ok(()) }
//! ```

use crate::WorkerError;
use crate::local_generator::{LocalGenerator, LocalGeneratorConfig};
use crate::openai::{OpenAiConfig, OpenAiGenerator};
use futures::stream::{BoxStream, Stream, StreamExt};
use longview_models::{ChatMessage, GenerateParams, GenerationStats, GeneratorInfo, Sampling};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::watch;

/// Which generator to run.
#[derive(Debug)]
pub enum GeneratorConfig {
    /// A llama-architecture GGUF chat model in this process.
    Local(LocalGeneratorConfig),
    /// An OpenAI-compatible server (vLLM, TGI, llama.cpp server) over HTTP.
    OpenAi(OpenAiConfig),
}

/// A cloneable handle to the configured generator.
#[derive(Clone, Debug)]
pub enum Generator {
    Local(LocalGenerator),
    OpenAi(OpenAiGenerator),
}

/// Published on a watch channel for health checks: a local model loads and warms up
/// first; a remote generator is ready at once (its errors come per request).
#[derive(Clone, Debug)]
pub enum GeneratorState {
    Loading,
    Ready(Arc<GeneratorInfo>),
    Failed(Arc<str>),
}

impl Generator {
    /// Starts the generator: a local model loads on its own thread, so this returns at
    /// once; a remote one builds its HTTP client.
    pub fn spawn(config: GeneratorConfig) -> Result<Self, WorkerError> {
        match config {
            GeneratorConfig::Local(config) => LocalGenerator::spawn(config).map(Self::Local),
            GeneratorConfig::OpenAi(config) => OpenAiGenerator::new(config).map(Self::OpenAi),
        }
    }

    /// Starts answering `messages`. Errors that need no model (loading, a full queue, a
    /// prompt over the context, a template that refuses the conversation, a remote
    /// server's refusal) come back here; later ones arrive in the stream. Dropping the
    /// stream cancels the generation.
    pub async fn generate(
        &self,
        messages: Vec<ChatMessage>,
        params: GenerateParams,
    ) -> Result<TextStream, WorkerError> {
        check_params(&messages, &params)?;
        match self {
            Generator::Local(local) => local.generate(messages, params).await,
            Generator::OpenAi(remote) => remote.generate(messages, params).await,
        }
    }

    /// How many tokens `messages` take as a prompt (chat template included), to budget
    /// passages against `context_tokens`; `None` for a remote server, which cannot say.
    pub async fn prompt_tokens(
        &self,
        messages: Vec<ChatMessage>,
    ) -> Result<Option<usize>, WorkerError> {
        match self {
            Generator::Local(local) => local.prompt_tokens(messages).await.map(Some),
            Generator::OpenAi(_) => Ok(None),
        }
    }

    /// The model's name, version and context, or why there is none yet.
    pub fn info(&self) -> Result<Arc<GeneratorInfo>, WorkerError> {
        match &*self.watch_state().borrow() {
            GeneratorState::Ready(info) => Ok(info.clone()),
            GeneratorState::Loading => Err(WorkerError::Loading),
            GeneratorState::Failed(reason) => Err(WorkerError::Failed(reason.to_string())),
        }
    }

    /// Waits until the generator is ready (or failed).
    pub async fn ready(&self) -> Result<Arc<GeneratorInfo>, WorkerError> {
        let mut state = self.watch_state();
        let settled = state
            .wait_for(|s| !matches!(s, GeneratorState::Loading))
            .await
            .map_err(|_| WorkerError::Stopped)?;
        drop(settled);
        self.info()
    }

    /// Follows the generator's state (loading, ready, failed).
    pub fn watch_state(&self) -> watch::Receiver<GeneratorState> {
        match self {
            Generator::Local(local) => local.watch_state(),
            Generator::OpenAi(remote) => remote.watch_state(),
        }
    }
}

/// Refuses requests no generator can serve, before any work.
fn check_params(messages: &[ChatMessage], params: &GenerateParams) -> Result<(), WorkerError> {
    let refuse = |message: String| Err(WorkerError::Rejected(message));
    if messages.is_empty() {
        return refuse("no messages to answer".into());
    }
    if params.max_new_tokens == 0 {
        return refuse("max_new_tokens must be at least 1".into());
    }
    if !(params.repeat_penalty.is_finite() && params.repeat_penalty > 0.0) {
        return refuse(format!(
            "repeat_penalty {} must be a positive number (1.0: off)",
            params.repeat_penalty
        ));
    }
    if let Sampling::Random {
        temperature, top_p, ..
    } = params.sampling
    {
        if !(temperature.is_finite() && temperature > 0.0) {
            return refuse(format!("temperature {temperature} must be above 0"));
        }
        if let Some(p) = top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return refuse(format!("top_p {p} must be in (0, 1]"));
        }
    }
    Ok(())
}

/// One item of a generation: a piece of text, or the end with its statistics.
#[derive(Clone, Debug, PartialEq)]
pub enum GenerationEvent {
    /// Whole UTF-8 characters; concatenated, the pieces are the answer.
    Text(String),
    /// The last event: token counts, why it stopped, timings.
    Finished(GenerationStats),
}

/// The answer as it is generated. Ends after [`GenerationEvent::Finished`] or an error;
/// a stream that ends without either reports [`WorkerError::Stopped`]. Dropping it
/// cancels the generation.
pub struct TextStream {
    inner: BoxStream<'static, Result<GenerationEvent, WorkerError>>,
    done: bool,
}

impl std::fmt::Debug for TextStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextStream")
            .field("done", &self.done)
            .finish()
    }
}

impl TextStream {
    pub(crate) fn new(
        events: impl Stream<Item = Result<GenerationEvent, WorkerError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: events.boxed(),
            done: false,
        }
    }

    /// The next event, `None` after the last.
    pub async fn next(&mut self) -> Option<Result<GenerationEvent, WorkerError>> {
        StreamExt::next(self).await
    }

    /// Reads the whole answer: its text and statistics.
    pub async fn collect_text(mut self) -> Result<(String, GenerationStats), WorkerError> {
        let mut text = String::new();
        while let Some(event) = self.next().await {
            match event? {
                GenerationEvent::Text(piece) => text.push_str(&piece),
                GenerationEvent::Finished(stats) => return Ok((text, stats)),
            }
        }
        Err(WorkerError::Stopped)
    }
}

impl Stream for TextStream {
    type Item = Result<GenerationEvent, WorkerError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match self.inner.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let item = match item {
            Some(Ok(GenerationEvent::Text(piece))) => Some(Ok(GenerationEvent::Text(piece))),
            Some(last) => {
                self.done = true;
                Some(last)
            }
            // The producer went away without saying how it ended.
            None => {
                self.done = true;
                Some(Err(WorkerError::Stopped))
            }
        };
        Poll::Ready(item)
    }
}
