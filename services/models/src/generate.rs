//! What a generation is asked and what it reports, shared by the local llama runtime and
//! remote OpenAI-compatible generators; and the chat prompter (template + tokenizer) a
//! caller uses to turn messages into prompt ids before queueing.

use crate::chat::{ChatMessage, ChatTemplate};
use crate::{ChatTokenizer, ModelError};

/// How the next token is chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampling {
    /// The most likely token every time: the same prompt gives the same text.
    Greedy,
    /// Sampling at `temperature`, from the smallest set of tokens whose probabilities
    /// reach `top_p` when set; `seed` makes a run repeatable.
    Random {
        temperature: f64,
        top_p: Option<f64>,
        seed: u64,
    },
}

/// Limits and decoding choices of one generation.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateParams {
    /// Generated tokens at most (the end-of-turn token not counted).
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Divides the logits of recently seen tokens (1.0: off). Small models loop without it.
    pub repeat_penalty: f32,
    /// How many of the latest tokens (prompt included) the penalty looks at.
    pub repeat_last_n: usize,
    /// Keep going past end-of-turn tokens: for benchmarks that need a fixed length.
    pub ignore_eos: bool,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            sampling: Sampling::Greedy,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            ignore_eos: false,
        }
    }
}

/// Why a generation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model ended its turn (eos, `<|im_end|>` and the like).
    EndOfText,
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The prompt and the answer filled the model's context.
    ContextFull,
    /// The caller stopped listening; no one sees this but the logs.
    Cancelled,
    /// A remote server's own reason (e.g. `content_filter`).
    Other(String),
}

impl StopReason {
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndOfText => "end_of_text",
            StopReason::MaxTokens => "max_tokens",
            StopReason::ContextFull => "context_full",
            StopReason::Cancelled => "cancelled",
            StopReason::Other(reason) => reason,
        }
    }
}

/// What a finished generation did.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationStats {
    /// Tokens of the rendered prompt (as a remote server reported; 0 if it did not).
    pub prompt_tokens: usize,
    /// Tokens generated (for a remote server that reports no usage: content deltas).
    pub generated_tokens: usize,
    pub stop_reason: StopReason,
    /// Reading the prompt (local), or waiting for the first token (remote).
    pub prompt_seconds: f64,
    /// From the first generated token to the last.
    pub generation_seconds: f64,
}

/// A generator model's identity and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorInfo {
    pub name: String,
    pub version: String,
    /// Prompt and answer tokens together; `None` when a remote server does not say.
    pub context_tokens: Option<usize>,
    pub device: String,
}

/// Messages to prompt ids with the model's own template and tokenizer. Cheap to share;
/// callers use it before queueing, so a bad conversation is refused without the model.
#[derive(Debug)]
pub struct ChatPrompter {
    template: ChatTemplate,
    tokenizer: ChatTokenizer,
}

impl ChatPrompter {
    pub fn new(template: ChatTemplate, tokenizer: ChatTokenizer) -> Self {
        Self {
            template,
            tokenizer,
        }
    }

    /// The rendered prompt text for `messages`.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, ModelError> {
        if messages.is_empty() {
            return Err(ModelError::Template("no messages to answer".into()));
        }
        self.template.render(messages)
    }

    /// Prompt ids for `messages`, bos first where the model wants it.
    pub fn prompt_ids(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, ModelError> {
        let mut ids = self.tokenizer.encode(&self.render(messages)?)?;
        if let Some(bos) = self.tokenizer.bos().filter(|_| self.tokenizer.add_bos())
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    pub fn tokenizer(&self) -> &ChatTokenizer {
        &self.tokenizer
    }
}
