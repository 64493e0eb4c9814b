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
