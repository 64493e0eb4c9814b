//! The OpenAI chat completions wire format: the request we send, the streamed chunks we
//! read, and what HTTP refusals mean for our callers.

use crate::WorkerError;
use longview_models::{ChatMessage, GenerateParams, Sampling, StopReason};
use serde::{Deserialize, Serialize};

/// The body of `POST /chat/completions` with `stream: true`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    max_tokens: usize,
    temperature: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    /// Not OpenAI's, but vLLM and llama.cpp's server honour it (benchmarks only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ignore_eos: bool,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl<'a> ChatRequest<'a> {
    /// The request for `messages`; greedy decoding is temperature 0. The repeat penalty
    /// has no OpenAI field and is left to the server's defaults.
    pub fn new(model: &'a str, messages: &'a [ChatMessage], params: &GenerateParams) -> Self {
        let (temperature, top_p, seed) = match params.sampling {
            Sampling::Greedy => (0.0, None, None),
            Sampling::Random {
                temperature,
                top_p,
                seed,
            } => (temperature, top_p, Some(seed)),
        };
        Self {
            model,
            messages: messages
                .iter()
                .map(|m| WireMessage {
                    role: m.role.as_str(),
                    content: &m.content,
                })
                .collect(),
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            max_tokens: params.max_new_tokens,
            temperature,
            top_p,
            seed,
            ignore_eos: params.ignore_eos,
        }
    }
}

/// What one streamed chunk says.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Chunk {
    pub content: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub(crate) struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

#[derive(Debug, Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Vec<WireChoice>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    #[serde(default)]
    delta: WireDelta,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireDelta {
    content: Option<String>,
}

impl Chunk {
    /// Parses one event's data; an `error` object mid-stream is an error.
    pub fn parse(data: &str) -> Result<Self, String> {
        let wire: WireChunk =
            serde_json::from_str(data).map_err(|e| format!("unreadable chunk ({e}): {data}"))?;
        if let Some(error) = wire.error {
            return Err(format!("the server reported an error: {error}"));
        }
        let choice = wire.choices.into_iter().next();
        let (content, finish_reason) = match choice {
            Some(choice) => (choice.delta.content, choice.finish_reason),
            None => (None, None),
        };
        Ok(Self {
            content,
            finish_reason,
            usage: wire.usage,
        })
    }
}

/// Token counts as the server reported them; without a report, the deltas counted (one
/// token each on vLLM and llama.cpp) and no prompt count.
pub(crate) fn usage_or_counted(usage: Option<Usage>, deltas: usize) -> (usize, usize) {
    match usage {
        Some(usage) => (usage.prompt_tokens, usage.completion_tokens),
        None => (0, deltas),
    }
}

pub(crate) fn stop_reason(finish: Option<&str>) -> StopReason {
    match finish {
        Some("stop") | Some("eos") | None => StopReason::EndOfText,
        Some("length") => StopReason::MaxTokens,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

/// What a non-2xx answer means for the caller, with the server's own words (shortened).
pub(crate) fn refusal(endpoint: &str, status: u16, body: &str) -> WorkerError {
    let said: String = body.chars().take(500).collect();
    let said = said.trim();
    match status {
        400 | 413 | 422 => WorkerError::Rejected(format!(
            "the generator at {endpoint} refused the request ({status}): {said}"
        )),
        401 | 403 => WorkerError::Remote(format!(
            "the generator at {endpoint} refused our credentials ({status}); check the API key \
             (LONGVIEW_GENERATOR_API_KEY): {said}"
        )),
        404 => WorkerError::Remote(format!(
            "the generator at {endpoint} answered 404: check that the URL is the API root \
             (usually ending in /v1) and the model name is served: {said}"
        )),
        429 | 503 => WorkerError::Busy(format!(
            "the generator at {endpoint} is busy ({status}); retry shortly: {said}"
        )),
        _ => WorkerError::Remote(format!(
            "the generator at {endpoint} failed ({status}): {said}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_requests_are_temperature_zero_and_stream_usage() {
        let messages = [ChatMessage::user("hi")];
        let request = ChatRequest::new("m", &messages, &GenerateParams::default());
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["temperature"], 0.0);
        assert_eq!(json["stream"], true);
        assert_eq!(json["stream_options"]["include_usage"], true);
        assert_eq!(json["messages"][0]["role"], "user");
        assert!(json.get("seed").is_none() && json.get("ignore_eos").is_none());
    }

    #[test]
    fn chunks_carry_content_finish_and_usage() {
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hé"},"finish_reason":null}]}"#;
        assert_eq!(Chunk::parse(text).unwrap().content.as_deref(), Some("Hé"));
        let last = r#"{"choices":[{"delta":{},"finish_reason":"length"}],
            "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        let chunk = Chunk::parse(last).unwrap();
        assert_eq!(
            stop_reason(chunk.finish_reason.as_deref()),
            StopReason::MaxTokens
        );
        assert_eq!(usage_or_counted(chunk.usage, 9), (12, 3));
        let error = r#"{"error":{"message":"out of memory"}}"#;
        assert!(Chunk::parse(error).unwrap_err().contains("out of memory"));
    }

    #[test]
    fn refusals_map_to_what_the_caller_can_do() {
        let busy = refusal("http://x/v1/chat/completions", 429, "slow down");
        assert!(matches!(busy, WorkerError::Busy(_)), "{busy}");
        let bad = refusal("http://x/v1/chat/completions", 400, "context too long");
        assert!(matches!(bad, WorkerError::Rejected(ref m) if m.contains("context too long")));
        let missing = refusal("http://x/chat/completions", 404, "");
        assert!(missing.to_string().contains("/v1"), "{missing}");
    }
}
