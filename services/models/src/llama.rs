//! Text generation with any llama-architecture GGUF model on candle's quantized llama:
//! the prompt is read in chunks into the KV cache, then tokens are chosen one at a time
//! and handed out as whole-character text pieces until an end-of-turn token, the token
//! limit, the context's end, or the caller says stop.

use crate::chat::ChatTemplate;
use crate::generate::{
    ChatPrompter, GenerateParams, GenerationStats, GeneratorInfo, Sampling, StopReason,
};
use crate::gguf::{GgufFile, Meta};
use crate::model_dir::{MANIFEST_FILE, Manifest};
use crate::{ChatTokenizer, DeviceKind, ModelError};
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Prompt tokens per forward pass: bounds the attention scores' memory on long prompts.
const PREFILL_CHUNK: usize = 512;

/// A loaded GGUF chat model. Not shareable: it owns the KV cache; one thread drives it.
pub struct LlamaGenerator {
    model: ModelWeights,
    device: Device,
    prompter: Arc<ChatPrompter>,
    info: GeneratorInfo,
    context_tokens: usize,
}

impl std::fmt::Debug for LlamaGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaGenerator")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl LlamaGenerator {
    /// Loads a `.gguf` file (or the one `.gguf` in a directory) onto `device`.
    pub fn load(path: &Path, device: DeviceKind) -> Result<Self, ModelError> {
        let path = resolve_gguf(path)?;
        let gguf = GgufFile::open(&path)?;
        let meta = gguf.meta();
        let prompter = Arc::new(read_prompter(meta)?);
        let trained = meta.u32("llama.context_length").unwrap_or(2048) as usize;
        // candle precomputes rotary embeddings for MAX_SEQ_LEN positions only.
        let context_tokens = trained.min(MAX_SEQ_LEN);
        let (name, version) = identify(&path, meta);
        let info = GeneratorInfo {
            name,
            version,
            context_tokens: Some(context_tokens),
            device: device.to_string(),
        };
        let model = load_weights(gguf, &device.open()?)?;
        Ok(Self {
            model,
            device: device.open()?,
            prompter,
            info,
            context_tokens,
        })
    }

    pub fn info(&self) -> &GeneratorInfo {
        &self.info
    }

    /// The template and tokenizer, for callers preparing prompts on other threads.
    pub fn prompter(&self) -> Arc<ChatPrompter> {
        self.prompter.clone()
    }

    pub fn context_tokens(&self) -> usize {
        self.context_tokens
    }

    /// Generates an answer to `prompt` (ids from [`ChatPrompter::prompt_ids`]). `emit`
    /// gets every generated token's id and text (empty while a character is unfinished)
    /// and may break to cancel. The text handed out never splits a UTF-8 character; one
    /// cut off by the end of generation is dropped.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerateParams,
        mut emit: impl FnMut(u32, &str) -> ControlFlow<()>,
    ) -> Result<GenerationStats, ModelError> {
        if prompt.is_empty() || prompt.len() >= self.context_tokens {
            return Err(ModelError::SequenceTooLong {
                tokens: prompt.len(),
                max_positions: self.context_tokens - 1,
            });
        }
        let started = Instant::now();
        let mut logits = self.prefill(prompt)?;
        let prompt_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let prompter = self.prompter.clone();
        let tokenizer = prompter.tokenizer();
        let mut sampler = sampler(&params.sampling);
        let mut decoder = tokenizer.bytes().stream();
        let mut tokens = prompt.to_vec();
        let stop_reason = loop {
            if tokens.len() - prompt.len() >= params.max_new_tokens {
                break StopReason::MaxTokens;
            }
            let next = choose(&logits, &tokens, params, &mut sampler)?;
            if !params.ignore_eos && tokenizer.stop_ids().contains(&next) {
                break StopReason::EndOfText;
            }
            tokens.push(next);
            if emit(next, &decoder.push(next)).is_break() {
                break StopReason::Cancelled;
            }
            if tokens.len() >= self.context_tokens {
                break StopReason::ContextFull;
            }
            logits = self.forward(&[next], tokens.len() - 1)?;
        };
        let dropped = decoder.finish();
        if dropped > 0 {
            tracing::debug!(
                bytes = dropped,
                "answer ended inside a character; dropped it"
            );
        }
        Ok(GenerationStats {
            prompt_tokens: prompt.len(),
            generated_tokens: tokens.len() - prompt.len(),
            stop_reason,
            prompt_seconds,
            generation_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Reads the prompt into a fresh KV cache; returns the logits after its last token.
    fn prefill(&mut self, prompt: &[u32]) -> Result<Tensor, ModelError> {
        self.model.clear_kv_cache();
        let mut logits = None;
        for (index, chunk) in prompt.chunks(PREFILL_CHUNK).enumerate() {
            logits = Some(self.forward(chunk, index * PREFILL_CHUNK)?);
        }
        logits.ok_or_else(|| ModelError::Tokenizer("empty prompt".into()))
    }

    fn forward(&mut self, ids: &[u32], position: usize) -> Result<Tensor, ModelError> {
        let input = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        Ok(self.model.forward(&input, position)?.squeeze(0)?)
    }
}

/// The weights on `device`, slow quantizations requantized on the way (see requantize).
fn load_weights(gguf: GgufFile, device: &Device) -> Result<ModelWeights, ModelError> {
    let mut file = std::fs::File::open(&gguf.path).map_err(ModelError::io(&gguf.path))?;
    let slow = crate::requantize::slow_tensors(&gguf.content);
    if slow == 0 {
        return Ok(ModelWeights::from_gguf(gguf.content, &mut file, device)?);
    }
    let started = Instant::now();
    let mut memory = crate::requantize::to_q8_0(&gguf.content, &mut file)?;
    let content = candle_core::quantized::gguf_file::Content::read(&mut memory)?;
    tracing::info!(
        tensors = slow,
        seconds = started.elapsed().as_secs_f64(),
        "requantized tensors without SIMD kernels (Q4_1, Q5_0, Q5_1) to Q8_0"
    );
    Ok(ModelWeights::from_gguf(content, &mut memory, device)?)
}

fn sampler(sampling: &Sampling) -> LogitsProcessor {
    match sampling {
        Sampling::Greedy => LogitsProcessor::new(0, None, None),
        Sampling::Random {
            temperature,
            top_p,
            seed,
        } => LogitsProcessor::new(*seed, Some(*temperature), *top_p),
    }
}

fn choose(
    logits: &Tensor,
    tokens: &[u32],
    params: &GenerateParams,
    sampler: &mut LogitsProcessor,
) -> Result<u32, ModelError> {
    let logits = logits.to_dtype(candle_core::DType::F32)?;
    let logits = if params.repeat_penalty == 1.0 || params.repeat_last_n == 0 {
        logits
    } else {
        let recent = &tokens[tokens.len().saturating_sub(params.repeat_last_n)..];
        candle_transformers::utils::apply_repeat_penalty(&logits, params.repeat_penalty, recent)?
    };
    Ok(sampler.sample(&logits)?)
}

fn read_prompter(meta: Meta<'_>) -> Result<ChatPrompter, ModelError> {
    let tokenizer = ChatTokenizer::from_meta(meta)?;
    let source = meta.string("tokenizer.chat_template").ok_or_else(|| {
        ModelError::Template(
            "the GGUF has no tokenizer.chat_template: it is not a chat model, or was exported \
             without its template"
                .into(),
        )
    })?;
    let text = |id: Option<u32>| id.and_then(|id| tokenizer.token_text(id)).unwrap_or("");
    let template = ChatTemplate::new(source, text(tokenizer.bos()), text(tokenizer.eos()))?;
    Ok(ChatPrompter::new(template, tokenizer))
}

/// A `.gguf` path as given, or the only `.gguf` file in a directory.
fn resolve_gguf(path: &Path) -> Result<PathBuf, ModelError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let entries = std::fs::read_dir(path).map_err(ModelError::io(path))?;
    let ggufs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "gguf"))
        .collect();
    match ggufs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ModelError::MissingFile {
            dir: path.to_path_buf(),
            file: "*.gguf",
        }),
        _ => Err(ModelError::Gguf(format!(
            "{} holds {} .gguf files; name one",
            path.display(),
            ggufs.len()
        ))),
    }
}

/// Name and version: from the manifest `models pull` wrote beside the file, else the
/// GGUF's `general.name` and the file name.
fn identify(path: &Path, meta: Meta<'_>) -> (String, String) {
    let manifest = path.parent().map(|dir| dir.join(MANIFEST_FILE));
    let manifest = manifest
        .and_then(|m| std::fs::read(m).ok())
        .and_then(|bytes| serde_json::from_slice::<Manifest>(&bytes).ok());
    if let Some(manifest) = manifest {
        return (manifest.name, manifest.version);
    }
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = meta
        .string("general.name")
        .map_or_else(|| file.clone(), str::to_owned);
    (name, file)
}
