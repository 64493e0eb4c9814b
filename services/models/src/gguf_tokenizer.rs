//! A tokenizer built from GGUF metadata (`tokenizer.ggml.*`), for GGUF files that ship no
//! tokenizer.json: byte-level BPE (`gpt2`: SmolLM, Llama 3, Qwen) or SentencePiece BPE
//! with byte fallback (`llama`: Llama 2, TinyLlama, Mistral). Control and user-defined
//! tokens (`<|im_start|>`, `<|im_end|>`, `<s>`) are added so they encode as single ids.

use crate::ModelError;
use crate::gguf::Meta;
use crate::token_bytes::{TokenBytes, VocabKind};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// Token types as llama.cpp writes them into `tokenizer.ggml.token_type`.
pub(crate) mod token_type {
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const BYTE: i32 = 6;
}

/// End-of-turn tokens of common chat formats; those present as control tokens stop
/// generation besides the declared eos/eot ids.
const END_OF_TURN: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<|end|>",
    "<end_of_turn>",
    "</s>",
];

/// Llama 3's pre-tokenizer regex (digits in groups of up to three).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's: the same with single digits.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A GGUF model's tokenizer: text to ids with the `tokenizers` crate, ids back to bytes
/// with the vocabulary's own byte table (so streamed text never splits a character).
#[derive(Clone, Debug)]
pub struct ChatTokenizer {
    tokenizer: Tokenizer,
    bytes: TokenBytes,
    tokens: Vec<String>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    stop_ids: Vec<u32>,
}

impl ChatTokenizer {
    /// Builds the tokenizer that `meta` describes.
    pub(crate) fn from_meta(meta: Meta<'_>) -> Result<Self, ModelError> {
        let model = meta.string("tokenizer.ggml.model").unwrap_or("");
        let kind = match model {
            "gpt2" => VocabKind::ByteLevel,
            "llama" => VocabKind::SentencePiece,
            other => {
                return Err(ModelError::Unsupported {
                    found: format!("tokenizer.ggml.model {other:?}"),
                    supported: "gpt2 (byte-level BPE) or llama (SentencePiece BPE)",
                });
            }
        };
        let tokens: Vec<String> = meta
            .strings("tokenizer.ggml.tokens")?
            .into_iter()
            .map(str::to_owned)
            .collect();
        let types = meta
            .i32s("tokenizer.ggml.token_type")?
            .unwrap_or_else(|| vec![1; tokens.len()]);
        if types.len() != tokens.len() {
            return Err(ModelError::Gguf(format!(
                "{} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let mut tokenizer = match kind {
            VocabKind::ByteLevel => byte_level(meta, &tokens)?,
            VocabKind::SentencePiece => sentencepiece(meta, &tokens, &types)?,
        };
        add_special_tokens(&mut tokenizer, &tokens, &types)?;
        let id = |key: &str| meta.u32(key).filter(|&id| (id as usize) < tokens.len());
        let (bos, eos) = (
            id("tokenizer.ggml.bos_token_id"),
            id("tokenizer.ggml.eos_token_id"),
        );
        let add_bos = meta
            .bool("tokenizer.ggml.add_bos_token")
            .unwrap_or(kind == VocabKind::SentencePiece);
        let mut stop_ids: Vec<u32> = [eos, id("tokenizer.ggml.eot_token_id")]
            .into_iter()
            .flatten()
            .collect();
        for (index, token) in tokens.iter().enumerate() {
            if types[index] == token_type::CONTROL && END_OF_TURN.contains(&token.as_str()) {
                stop_ids.push(index as u32);
            }
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();
        Ok(Self {
            bytes: TokenBytes::new(kind, &tokens, &types),
            tokenizer,
            tokens,
            bos,
            eos,
            add_bos,
            stop_ids,
        })
    }

    /// Ids of `text`, special and control tokens written in it recognised as such.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids` as the `tokenizers` decoder renders it (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// The vocabulary's byte table: what streaming detokenization reads.
    pub fn bytes(&self) -> &TokenBytes {
        &self.bytes
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.tokenizer.token_to_id(text)
    }

    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether prompts start with the bos token (`tokenizer.ggml.add_bos_token`).
    pub fn add_bos(&self) -> bool {
        self.add_bos && self.bos.is_some()
    }

    /// Tokens that end the assistant's turn.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }
}

/// Byte-level BPE: merges from the metadata, the pre-tokenizer named by
/// `tokenizer.ggml.pre` (GPT-2's split where the name is unknown).
fn byte_level(meta: Meta<'_>, tokens: &[String]) -> Result<Tokenizer, ModelError> {
    let merges = meta
        .strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|merge| {
            merge
                .split_once(' ')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| ModelError::Gguf(format!("merge {merge:?} is not two tokens")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pre = meta.string("tokenizer.ggml.pre").unwrap_or("default");
    let bpe = BPE::builder()
        .vocab_and_merges(vocab(tokens), merges)
        .ignore_merges(matches!(pre, "llama3" | "llama-bpe"))
        .build()
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(byte_level_pre_tokenizer(pre)?));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    Ok(tokenizer)
}

fn byte_level_pre_tokenizer(pre: &str) -> Result<Sequence, ModelError> {
    // Split by the model's own regex, then map bytes to BPE symbols without GPT-2's regex.
    let with_regex = |pattern: &str| -> Result<Sequence, ModelError> {
        let split = Split::new(
            SplitPattern::Regex(pattern.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, false, false).into(),
        ]))
    };
    let gpt2: PreTokenizerWrapper = ByteLevel::new(false, false, true).into();
    match pre {
        "llama3" | "llama-bpe" => with_regex(LLAMA3_SPLIT),
        "qwen2" => with_regex(QWEN2_SPLIT),
        // SmolLM and StarCoder split every digit, then use GPT-2's regex.
        "smollm" | "starcoder" | "refact" => {
            Ok(Sequence::new(vec![Digits::new(true).into(), gpt2]))
        }
        "default" | "gpt2" | "gpt-2" => Ok(Sequence::new(vec![gpt2])),
        other => {
            tracing::warn!(
                pre = other,
                "unknown tokenizer.ggml.pre; using GPT-2's split"
            );
            Ok(Sequence::new(vec![gpt2]))
        }
    }
}

/// SentencePiece BPE: merges rebuilt from the token scores, byte fallback for anything
/// outside the vocabulary, `▁` for spaces.
fn sentencepiece(
    meta: Meta<'_>,
    tokens: &[String],
    types: &[i32],
) -> Result<Tokenizer, ModelError> {
    let scores = meta
        .f32s("tokenizer.ggml.scores")?
        .ok_or_else(|| ModelError::Gguf("a llama tokenizer needs tokenizer.ggml.scores".into()))?;
    let unk = types
        .iter()
        .position(|&t| t == token_type::UNKNOWN)
        .map(|i| tokens[i].clone());
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab(tokens), merges_from_scores(tokens, &scores))
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    let bpe = builder
        .build()
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let prepend = match meta.bool("tokenizer.ggml.add_space_prefix").unwrap_or(true) {
        true => PrependScheme::First,
        false => PrependScheme::Never,
    };
    tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', prepend, false)));
    let space = Replace::new("▁", " ").map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    tokenizer.with_decoder(Some(DecoderSequence::new(vec![
        space.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
        Strip::new(' ', 1, 0).into(),
    ])));
    Ok(tokenizer)
}

fn vocab(tokens: &[String]) -> Vocab {
    tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.clone(), id as u32))
        .collect()
}

/// SentencePiece stores a score per piece instead of merges: every split of a piece into
/// two pieces that are themselves in the vocabulary is a merge, ranked by the merged
/// piece's score (higher merges first), ties by the halves' ids.
fn merges_from_scores(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    let ids: std::collections::HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.as_str(), id))
        .collect();
    let mut merges = Vec::new();
    for (merged, piece) in tokens.iter().enumerate() {
        for (at, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(at);
            if let (Some(&l), Some(&r)) = (ids.get(left), ids.get(right)) {
                let score = scores.get(merged).copied().unwrap_or(f32::MIN);
                merges.push((score, l, r));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    merges
        .into_iter()
        .map(|(_, l, r)| (tokens[l].clone(), tokens[r].clone()))
        .collect()
}

/// Control tokens become special added tokens (matched whole, even inside text) and
/// user-defined ones plain added tokens, as llama.cpp treats them.
fn add_special_tokens(
    tokenizer: &mut Tokenizer,
    tokens: &[String],
    types: &[i32],
) -> Result<(), ModelError> {
    let pick = |wanted: i32| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(types)
            .filter(|&(token, &t)| t == wanted && !token.is_empty())
            .map(|(token, _)| AddedToken::from(token.clone(), wanted == token_type::CONTROL))
            .collect()
    };
    let added = tokenizer
        .add_special_tokens(pick(token_type::CONTROL))
        .and_then(|_| tokenizer.add_tokens(pick(token_type::USER_DEFINED)));
    added
        .map(drop)
        .map_err(|e| ModelError::Tokenizer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_follow_the_merged_pieces_scores() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .map(String::from)
            .to_vec();
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -0.5];
        let merges = merges_from_scores(&tokens, &scores);
        let pairs: Vec<(&str, &str)> = merges
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "bc"), ("ab", "c"), ("a", "b"), ("b", "c")]);
    }
}
