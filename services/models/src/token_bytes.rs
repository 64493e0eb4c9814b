//! Ids back to text while generating: every token's raw bytes, and a stream decoder that
//! emits only whole UTF-8 characters. One character can span several tokens (an emoji is
//! four byte tokens under byte fallback or byte-level BPE), so incomplete bytes are held
//! back until the rest arrives, never emitted as a replacement character.

use crate::gguf_tokenizer::token_type;
use std::collections::HashMap;
use std::sync::Arc;

/// How a vocabulary spells bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// GPT-2 byte-level BPE: every byte is one printable symbol.
    ByteLevel,
    /// SentencePiece: `▁` for a space, `<0xAB>` tokens for bytes outside the vocabulary.
    SentencePiece,
}

/// The bytes each token id stands for; control tokens stand for nothing.
#[derive(Clone, Debug)]
pub struct TokenBytes {
    bytes: Arc<[Box<[u8]>]>,
    /// SentencePiece puts a space before the first word; the text starts after it.
    strip_leading_space: bool,
}

impl TokenBytes {
    pub fn new(kind: VocabKind, tokens: &[String], types: &[i32]) -> Self {
        let symbols: HashMap<char, u8> = byte_symbols()
            .iter()
            .enumerate()
            .map(|(byte, &symbol)| (symbol, byte as u8))
            .collect();
        let bytes = tokens
            .iter()
            .zip(types)
            .map(|(token, &kind_of)| token_bytes(kind, token, kind_of, &symbols))
            .collect();
        Self {
            bytes,
            strip_leading_space: kind == VocabKind::SentencePiece,
        }
    }

    /// The raw bytes of one token (empty for control tokens and unknown ids).
    pub fn of(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], |b| b)
    }

    /// A decoder for one generated sequence.
    pub fn stream(&self) -> TextDecoder {
        TextDecoder {
            table: self.clone(),
            pending: Vec::new(),
            at_start: self.strip_leading_space,
        }
    }

    /// All of `ids` as text, as a stream emits it in total: invalid bytes replaced, an
    /// unfinished last character dropped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut decoder = self.stream();
        ids.iter().map(|&id| decoder.push(id)).collect()
    }
}

fn token_bytes(
    kind: VocabKind,
    token: &str,
    kind_of: i32,
    symbols: &HashMap<char, u8>,
) -> Box<[u8]> {
    match (kind, kind_of) {
        (_, token_type::CONTROL) => Box::default(),
        (VocabKind::SentencePiece, token_type::BYTE) => parse_byte_token(token)
            .map(|b| vec![b].into())
            .unwrap_or_else(|| token.as_bytes().into()),
        (VocabKind::SentencePiece, _) => token.replace('▁', " ").into_bytes().into(),
        (VocabKind::ByteLevel, token_type::USER_DEFINED) => token.as_bytes().into(),
        (VocabKind::ByteLevel, _) => token
            .chars()
            .map(|c| symbols.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            // Not a byte-level spelling (an added token): its text as written.
            .unwrap_or_else(|| token.as_bytes().to_vec())
            .into(),
    }
}

/// `<0x0A>` → 0x0A.
fn parse_byte_token(token: &str) -> Option<u8> {
    let hex = token.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

/// GPT-2's printable symbol for each byte: printable Latin-1 stands for itself, the rest
/// (controls, space, soft hyphen) for 256, 257, … in byte order.
fn byte_symbols() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut symbols = ['\0'; 256];
    let mut next = 256u32;
    for byte in 0..=255u8 {
        symbols[byte as usize] = if printable(byte) {
            char::from(byte)
        } else {
            next += 1;
            char::from_u32(next - 1).unwrap_or(char::REPLACEMENT_CHARACTER)
        };
    }
    symbols
}

/// Turns generated ids into text pieces, each made of whole UTF-8 characters.
#[derive(Debug)]
pub struct TextDecoder {
    table: TokenBytes,
    pending: Vec<u8>,
    at_start: bool,
}

impl TextDecoder {
    /// The text that `id` completes: possibly empty while a character is unfinished.
    pub fn push(&mut self, id: u32) -> String {
        self.pending.extend_from_slice(self.table.of(id));
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(valid) => {
                    text.push_str(valid);
                    self.pending.clear();
                    break;
                }
                Err(err) => {
                    let valid = err.valid_up_to();
                    text.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match err.error_len() {
                        // Incomplete at the end: hold those bytes for the next token.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        // Bytes no continuation can repair: one replacement, move on.
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
        self.strip_start(text)
    }

    /// Ends the text: bytes still held back are the start of a character the model
    /// never finished (it was cut off), and are dropped rather than shown as `�`.
    pub fn finish(&mut self) -> usize {
        std::mem::take(&mut self.pending).len()
    }

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn strip_start(&mut self, text: String) -> String {
        if !self.at_start || text.is_empty() {
            return text;
        }
        self.at_start = false;
        match text.strip_prefix(' ') {
            Some(rest) => rest.to_owned(),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SentencePiece vocabulary: control tokens, the 256 byte tokens, a few pieces.
    fn sentencepiece() -> TokenBytes {
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        let mut types = vec![
            token_type::UNKNOWN,
            token_type::CONTROL,
            token_type::CONTROL,
        ];
        for byte in 0..=255u8 {
            tokens.push(format!("<0x{byte:02X}>"));
            types.push(token_type::BYTE);
        }
        for piece in ["▁Hello", "▁caf", "!"] {
            tokens.push(piece.into());
            types.push(1);
        }
        TokenBytes::new(VocabKind::SentencePiece, &tokens, &types)
    }

    fn byte_id(byte: u8) -> u32 {
        3 + byte as u32
    }

    #[test]
    fn byte_fallback_tokens_never_split_a_character() {
        let table = sentencepiece();
        let piece = |i: u32| 3 + 256 + i;
        // "Hello 😀 café!": the emoji as four byte tokens, é as two after "▁caf".
        let mut ids = vec![piece(0), byte_id(b' ')];
        ids.extend("😀".bytes().map(byte_id));
        ids.push(piece(1));
        ids.push(1); // a control token in the middle stands for nothing
        ids.extend("é".bytes().map(byte_id));
        ids.push(piece(2));

        let mut decoder = table.stream();
        let mut pieces = Vec::new();
        let mut held_back = 0;
        for &id in &ids {
            let text = decoder.push(id);
            held_back = held_back.max(decoder.pending());
            pieces.push(text);
        }
        assert_eq!(decoder.finish(), 0);
        assert_eq!(pieces.concat(), "Hello 😀 café!");
        assert_eq!(held_back, 3, "three emoji bytes waited for the fourth");
        assert!(
            pieces
                .iter()
                .all(|p| !p.contains(char::REPLACEMENT_CHARACTER))
        );
        assert!(pieces.contains(&"😀".to_string()), "{pieces:?}");
    }

    #[test]
    fn broken_bytes_become_one_replacement_each_and_stream_continues() {
        let table = sentencepiece();
        let mut decoder = table.stream();
        let mut text = decoder.push(byte_id(0xFF));
        text += &decoder.push(byte_id(b'A'));
        // A character cut off at the end of generation is dropped, not shown broken.
        text += &decoder.push(byte_id(0xE2));
        text += &decoder.push(byte_id(0x82));
        assert_eq!(text, "\u{FFFD}A");
        assert_eq!(decoder.finish(), 2);
    }

    #[test]
    fn byte_level_symbols_map_back_to_bytes() {
        let symbols = byte_symbols();
        assert_eq!(symbols[b' ' as usize], 'Ġ');
        assert_eq!(symbols[b'\n' as usize], 'Ċ');
        assert_eq!(symbols[b'a' as usize], 'a');
        let tokens = ["Ġcaf".to_string(), "Ã©".into(), "<|im_end|>".into()];
        let types = [1, 1, token_type::CONTROL];
        let table = TokenBytes::new(VocabKind::ByteLevel, &tokens, &types);
        assert_eq!(table.decode(&[0, 1, 2]), " café");
    }
}
