//! The GGUF runtime with the real SmolLM2-135M-Instruct file: the tokenizer built from its
//! metadata agrees with llama.cpp's, chat tokens are single ids, greedy answers repeat,
//! and streamed pieces are whole characters that add up to the decoded answer.

#![allow(clippy::unwrap_used)]

mod common;

use longview_models::{ChatMessage, DeviceKind, GenerateParams, LlamaGenerator, StopReason};
use std::ops::ControlFlow;
use std::sync::OnceLock;

/// One load per test binary: tests share it behind a lock (it owns a KV cache).
fn model() -> std::sync::MutexGuard<'static, LlamaGenerator> {
    static MODEL: OnceLock<std::sync::Mutex<LlamaGenerator>> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let generator = LlamaGenerator::load(&common::generator_file(), DeviceKind::Cpu);
        std::sync::Mutex::new(generator.unwrap())
    });
    model.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one generation, returning (ids, pieces, stats).
fn run(
    messages: &[ChatMessage],
    params: &GenerateParams,
) -> (Vec<u32>, Vec<String>, longview_models::GenerationStats) {
    let mut model = model();
    let prompt = model.prompter().prompt_ids(messages).unwrap();
    let (mut ids, mut pieces) = (Vec::new(), Vec::new());
    let stats = model
        .generate(&prompt, params, |id, piece| {
            ids.push(id);
            pieces.push(piece.to_owned());
            ControlFlow::Continue(())
        })
        .unwrap();
    (ids, pieces, stats)
}

#[test]
fn tokenizer_from_gguf_metadata_matches_llama_cpp() {
    let fixture = std::fs::read_to_string(common::fixture("generator/tokens.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&fixture).unwrap();
    let prompter = model().prompter();
    let tokenizer = prompter.tokenizer();
    for case in fixture["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(ids, expected, "{text:?}");
        assert_eq!(tokenizer.decode(&ids).unwrap(), text, "tokenizers decode");
        // Control tokens print nothing in answers; everything else round-trips.
        let plain = text.replace("<|im_start|>", "").replace("<|im_end|>", "");
        assert_eq!(tokenizer.bytes().decode(&ids), plain, "byte table");
    }
}

#[test]
fn chat_tokens_are_single_ids_and_end_the_turn() {
    let prompter = model().prompter();
    let tokenizer = prompter.tokenizer();
    let start = tokenizer.encode("<|im_start|>").unwrap();
    let end = tokenizer.encode("<|im_end|>").unwrap();
    assert_eq!((start.len(), end.len()), (1, 1));
    assert_eq!(tokenizer.token_text(end[0]), Some("<|im_end|>"));
    assert!(
        tokenizer.stop_ids().contains(&end[0]),
        "{:?}",
        tokenizer.stop_ids()
    );

    let prompt = prompter
        .render(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")])
        .unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\n"
    );
}

#[test]
fn real_tokens_stream_whole_characters() {
    let prompter = model().prompter();
    let tokenizer = prompter.tokenizer();
    let text = "Ελληνικά, naïve café — 日本語 😀🎉 ok";
    let ids = tokenizer.encode(text).unwrap();
    let mut decoder = tokenizer.bytes().stream();
    let (mut streamed, mut held_back) = (String::new(), false);
    for &id in &ids {
        let piece = decoder.push(id);
        held_back |= decoder.pending() > 0;
        assert!(!piece.contains(char::REPLACEMENT_CHARACTER), "{piece:?}");
        streamed.push_str(&piece);
    }
    assert_eq!(decoder.finish(), 0);
    assert_eq!(streamed, text);
    assert!(
        held_back,
        "some character spans tokens, so bytes were held back"
    );
}

#[test]
fn greedy_answer_is_english_and_repeatable() {
    let messages = [ChatMessage::user("What is the capital of France?")];
    let params = GenerateParams {
        max_new_tokens: 16,
        ..GenerateParams::default()
    };
    let (ids, pieces, stats) = run(&messages, &params);
    let (again, _, _) = run(&messages, &params);
    assert_eq!(ids, again, "greedy decoding is deterministic");

    let text = pieces.concat();
    let letters = text.chars().filter(char::is_ascii_alphabetic).count();
    assert!(letters >= 10, "{text:?}");
    assert!(text.contains("Paris"), "{text:?}");
    assert!(stats.prompt_tokens > 10 && stats.generated_tokens == ids.len());
    assert!(matches!(
        stats.stop_reason,
        StopReason::EndOfText | StopReason::MaxTokens
    ));
}

#[test]
fn streamed_pieces_add_up_to_the_decoded_answer() {
    let messages = [ChatMessage::user(
        "Write three Japanese words with their English meaning, and an emoji for each.",
    )];
    let params = GenerateParams {
        max_new_tokens: 40,
        ..GenerateParams::default()
    };
    let (ids, pieces, _) = run(&messages, &params);
    // The tokenizers crate's decoder, an independent implementation, on all ids at once;
    // a character the token limit cut off is dropped from the stream, not shown as �.
    let decoded = model().prompter().tokenizer().decode(&ids).unwrap();
    let whole = decoded
        .strip_suffix(char::REPLACEMENT_CHARACTER)
        .unwrap_or(&decoded);
    assert_eq!(pieces.concat(), whole);
    assert!(
        !decoded.is_ascii(),
        "the answer has multibyte characters: {decoded:?}"
    );
    assert!(
        pieces.iter().any(String::is_empty),
        "some character spanned tokens and was held back whole: {pieces:?}"
    );
}

#[test]
fn sampling_with_a_seed_repeats_and_limits_hold() {
    let messages = [ChatMessage::user("Tell me a story about a fox.")];
    let params = GenerateParams {
        max_new_tokens: 12,
        ignore_eos: true,
        sampling: longview_models::Sampling::Random {
            temperature: 0.8,
            top_p: Some(0.9),
            seed: 7,
        },
        ..GenerateParams::default()
    };
    let (ids, _, stats) = run(&messages, &params);
    let (again, _, _) = run(&messages, &params);
    assert_eq!(ids, again, "same seed, same tokens");
    assert_eq!((ids.len(), stats.stop_reason), (12, StopReason::MaxTokens));
}
