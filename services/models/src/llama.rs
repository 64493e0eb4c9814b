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
        let device = device.open()?;
        let model = load_weights(gguf, &device)?;
        Ok(Self {
            model,
            device,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatMessage;
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::{GgmlDType, QTensor};

    const DIM: usize = 64;

    /// A SentencePiece vocabulary: unk, bos, eos, the 256 byte tokens, a few pieces.
    fn vocabulary() -> (Vec<String>, Vec<f32>, Vec<i32>) {
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        let mut types = vec![2, 3, 3];
        for byte in 0..=255u8 {
            tokens.push(format!("<0x{byte:02X}>"));
            types.push(6);
        }
        for piece in ["▁", "H", "e", "l", "o", "▁H", "ll", "▁He", "llo", "▁Hello"] {
            tokens.push(piece.into());
            types.push(1);
        }
        let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
        (tokens, scores, types)
    }

    fn metadata() -> Vec<(&'static str, Value)> {
        let (tokens, scores, types) = vocabulary();
        let template = "{% for m in messages %}{{ bos_token }}[{{ m.role }}] {{ m.content }}\
                        {{ eos_token }}{% endfor %}[assistant]";
        vec![
            ("general.architecture", Value::String("llama".into())),
            ("general.name", Value::String("tiny".into())),
            ("llama.context_length", Value::U32(64)),
            ("llama.block_count", Value::U32(1)),
            ("llama.embedding_length", Value::U32(DIM as u32)),
            ("llama.attention.head_count", Value::U32(2)),
            ("llama.attention.head_count_kv", Value::U32(2)),
            ("llama.rope.dimension_count", Value::U32(32)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
            ("tokenizer.ggml.model", Value::String("llama".into())),
            (
                "tokenizer.ggml.tokens",
                Value::Array(tokens.into_iter().map(Value::String).collect()),
            ),
            (
                "tokenizer.ggml.scores",
                Value::Array(scores.into_iter().map(Value::F32).collect()),
            ),
            (
                "tokenizer.ggml.token_type",
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            ("tokenizer.ggml.bos_token_id", Value::U32(1)),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
            ("tokenizer.chat_template", Value::String(template.into())),
        ]
    }

    /// Random weights of the right shapes; Q4_1 where it will be requantized.
    fn tensors(vocab: usize) -> Vec<(String, QTensor)> {
        let random = |shape: (usize, usize), dtype| {
            let t = Tensor::randn(0f32, 0.5, shape, &Device::Cpu).unwrap();
            QTensor::quantize(&t, dtype).unwrap()
        };
        let ones = |n| {
            QTensor::quantize(
                &Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap(),
                GgmlDType::F32,
            )
            .unwrap()
        };
        let mut tensors = vec![
            (
                "token_embd.weight".to_string(),
                random((vocab, DIM), GgmlDType::Q8_0),
            ),
            ("output_norm.weight".into(), ones(DIM)),
            ("blk.0.attn_norm.weight".into(), ones(DIM)),
            ("blk.0.ffn_norm.weight".into(), ones(DIM)),
        ];
        for name in ["attn_q", "attn_k", "attn_v", "attn_output"] {
            tensors.push((
                format!("blk.0.{name}.weight"),
                random((DIM, DIM), GgmlDType::Q4_1),
            ));
        }
        tensors.push((
            "blk.0.ffn_gate.weight".into(),
            random((2 * DIM, DIM), GgmlDType::Q4_1),
        ));
        tensors.push((
            "blk.0.ffn_up.weight".into(),
            random((2 * DIM, DIM), GgmlDType::Q4_1),
        ));
        tensors.push((
            "blk.0.ffn_down.weight".into(),
            random((DIM, 2 * DIM), GgmlDType::Q4_1),
        ));
        tensors
    }

    fn tiny_gguf(dir: &Path) -> PathBuf {
        let metadata = metadata();
        let tensors = tensors(vocabulary().0.len());
        let path = dir.join("tiny.gguf");
        let mut file = std::fs::File::create(&path).unwrap();
        let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        gguf_file::write(&mut file, &metadata, &tensors).unwrap();
        path
    }

    #[test]
    fn any_llama_gguf_with_a_sentencepiece_vocabulary_loads_and_generates() {
        let dir = tempfile::tempdir().unwrap();
        let mut model = LlamaGenerator::load(&tiny_gguf(dir.path()), DeviceKind::Cpu).unwrap();
        assert_eq!(model.info().name, "tiny");
        assert_eq!(model.context_tokens(), 64);

        let prompter = model.prompter();
        let tokenizer = prompter.tokenizer();
        let hello = tokenizer.encode("Hello").unwrap();
        assert_eq!(tokenizer.token_text(hello[0]), Some("▁Hello"), "{hello:?}");
        // Outside the vocabulary: one byte token per UTF-8 byte, decoded back whole.
        let emoji = tokenizer.encode("Hello 😀").unwrap();
        assert_eq!(emoji.len(), 1 + 1 + 4, "{emoji:?}");
        assert_eq!(tokenizer.bytes().decode(&emoji), "Hello 😀");

        let prompt = prompter.prompt_ids(&[ChatMessage::user("Hello")]).unwrap();
        assert_eq!(prompt[0], 1, "bos first");
        let params = GenerateParams {
            max_new_tokens: 5,
            ignore_eos: true,
            ..GenerateParams::default()
        };
        let mut count = 0;
        let stats = model
            .generate(&prompt, &params, |_, _| {
                count += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!((count, stats.stop_reason), (5, StopReason::MaxTokens));
    }

    #[test]
    fn a_gguf_of_another_architecture_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bert.gguf");
        let arch = Value::String("bert".into());
        let mut file = std::fs::File::create(&path).unwrap();
        gguf_file::write(&mut file, &[("general.architecture", &arch)], &[]).unwrap();
        let err = LlamaGenerator::load(&path, DeviceKind::Cpu).unwrap_err();
        assert!(err.to_string().contains("\"bert\""), "{err}");
    }
}
