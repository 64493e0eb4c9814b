//! What generative answers need from a language model: a prompt in, text pieces out as
//! they are produced. The local GGUF model and OpenAI-compatible servers plug in here.

use futures::stream::BoxStream;
use thiserror::Error;

/// A chat prompt: the instructions and the user's turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatPrompt {
    pub system: String,
    pub user: String,
}

#[derive(Debug, Error)]
pub enum GenerateError {
    /// The generator cannot answer now (loading, its server down or overloaded).
    #[error("the generator is unavailable: {0}")]
    Unavailable(String),
    /// The generator failed on this prompt; details go to the log.
    #[error("the generator failed: {0}")]
    Failed(String),
}

/// Pieces of generated text, in order; each is whole UTF-8 (never half a character).
pub type TextStream = BoxStream<'static, Result<String, GenerateError>>;

/// A language model that streams its answer.
#[tonic::async_trait]
pub trait TextGenerator: Send + Sync + 'static {
    /// Name and version, as responses report the model that answered.
    fn model(&self) -> (String, String);

    /// Starts generating at most `max_new_tokens` tokens for `prompt`.
    async fn generate(
        &self,
        prompt: ChatPrompt,
        max_new_tokens: usize,
    ) -> Result<TextStream, GenerateError>;
}

/// The worker's generator (a local GGUF model or an OpenAI-compatible server) as the
/// model Ask answers with. Greedy decoding, so the same passages give the same answer.
pub struct WorkerGenerator(pub longview_worker::Generator);

#[tonic::async_trait]
impl TextGenerator for WorkerGenerator {
    fn model(&self) -> (String, String) {
        match self.0.info() {
            Ok(info) => (info.name.clone(), info.version.clone()),
            Err(_) => (String::new(), String::new()),
        }
    }

    async fn generate(
        &self,
        prompt: ChatPrompt,
        max_new_tokens: usize,
    ) -> Result<TextStream, GenerateError> {
        use futures::StreamExt;
        use longview_worker::{ChatMessage, GenerateParams, GenerationEvent};
        let messages = vec![
            ChatMessage::system(prompt.system),
            ChatMessage::user(prompt.user),
        ];
        let params = GenerateParams {
            max_new_tokens,
            ..GenerateParams::default()
        };
        let events = self.0.generate(messages, params).await.map_err(refusal)?;
        let pieces = events.filter_map(|event| async move {
            match event {
                Ok(GenerationEvent::Text(piece)) => Some(Ok(piece)),
                Ok(GenerationEvent::Finished(_)) => None,
                Err(err) => Some(Err(refusal(err))),
            }
        });
        Ok(pieces.boxed())
    }
}

/// Loading, a full queue or an unreachable server is "try later"; the rest is a failure.
fn refusal(err: longview_worker::WorkerError) -> GenerateError {
    use longview_worker::WorkerError as E;
    match err {
        E::Loading | E::Stopped | E::QueueFull { .. } | E::Busy(_) | E::Unreachable(_) => {
            GenerateError::Unavailable(err.to_string())
        }
        other => GenerateError::Failed(other.to_string()),
    }
}
