//! The local generator worker with the real GGUF model: state and warm-up, streamed
//! answers, a full queue refused with a retry hint, a prompt over the context refused,
//! and a dropped stream stopping the model thread's work.

#![allow(clippy::unwrap_used)]

mod common;

use longview_worker::{
    ChatMessage, GenerateParams, GenerationEvent, Generator, GeneratorConfig, GeneratorState,
    LocalGeneratorConfig, StopReason, TextStream, WorkerError,
};
use tonic::Code;

fn spawn(configure: impl FnOnce(&mut LocalGeneratorConfig)) -> Generator {
    let mut config = LocalGeneratorConfig::new(common::generator_file());
    configure(&mut config);
    Generator::spawn(GeneratorConfig::Local(config)).unwrap()
}

fn question() -> Vec<ChatMessage> {
    vec![ChatMessage::user("Name three colours.")]
}

/// A long answer that does not stop by itself.
fn endless(max_new_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_new_tokens,
        ignore_eos: true,
        ..GenerateParams::default()
    }
}

async fn first_piece(stream: &mut TextStream) -> String {
    match stream.next().await.unwrap().unwrap() {
        GenerationEvent::Text(piece) => piece,
        GenerationEvent::Finished(stats) => panic!("finished early: {stats:?}"),
    }
}

#[tokio::test]
async fn loads_then_streams_an_answer_with_stats() {
    let (go, start_signal) = tokio::sync::oneshot::channel();
    let generator = spawn(|c| c.start_signal = Some(start_signal));
    assert!(matches!(
        *generator.watch_state().borrow(),
        GeneratorState::Loading
    ));
    let err = generator
        .generate(question(), GenerateParams::default())
        .await
        .unwrap_err();
    assert_eq!(err.into_status("messages").code(), Code::Unavailable);

    go.send(()).unwrap();
    let info = generator.ready().await.unwrap();
    assert_eq!(info.name, "HuggingFaceTB/SmolLM2-135M-Instruct");
    assert_eq!(info.context_tokens, Some(4096));

    let prompt_tokens = generator.prompt_tokens(question()).await.unwrap();
    let params = GenerateParams {
        max_new_tokens: 24,
        ..GenerateParams::default()
    };
    let mut stream = generator.generate(question(), params).await.unwrap();
    let (mut text, mut stats) = (String::new(), None);
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            GenerationEvent::Text(piece) => text.push_str(&piece),
            GenerationEvent::Finished(finished) => stats = Some(finished),
        }
    }
    let stats = stats.expect("a Finished event ends the stream");
    assert!(!text.trim().is_empty());
    assert!(stats.generated_tokens > 0 && stats.generated_tokens <= 24);
    assert_eq!(Some(stats.prompt_tokens), prompt_tokens);
    assert!(matches!(
        stats.stop_reason,
        StopReason::EndOfText | StopReason::MaxTokens
    ));
}

#[tokio::test]
async fn full_queue_answers_resource_exhausted() {
    let generator = spawn(|c| c.queue_capacity = 1);
    generator.ready().await.unwrap();
    // The first answer occupies the model thread (it has sent a piece), the second
    // waits in the one queue slot, the third finds no room.
    let mut running = generator.generate(question(), endless(200)).await.unwrap();
    first_piece(&mut running).await;
    let _waiting = generator.generate(question(), endless(200)).await.unwrap();
    let err = generator
        .generate(question(), endless(200))
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkerError::QueueFull { capacity: 1 }),
        "{err}"
    );
    let status = err.into_status("messages");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status
            .metadata()
            .get("retry-after-ms")
            .unwrap()
            .to_str()
            .unwrap(),
        "200"
    );
}

#[tokio::test]
async fn dropping_the_stream_stops_the_model_thread() {
    let generator = spawn(|_| ());
    generator.ready().await.unwrap();
    let Generator::Local(local) = &generator else {
        unreachable!("a local generator was configured")
    };
    let before = local.counters();

    let mut stream = generator.generate(question(), endless(2000)).await.unwrap();
    first_piece(&mut stream).await;
    drop(stream);
    // The next answer runs only once the thread has left the cancelled one.
    let params = GenerateParams {
        max_new_tokens: 4,
        ..GenerateParams::default()
    };
    let (_, next) = generator
        .generate(question(), params)
        .await
        .unwrap()
        .collect_text()
        .await
        .unwrap();

    let after = local.counters();
    assert_eq!(after.cancelled - before.cancelled, 1);
    let cancelled_tokens =
        after.tokens_generated - before.tokens_generated - next.generated_tokens as u64;
    assert!(
        cancelled_tokens < 100,
        "the cancelled answer went on for {cancelled_tokens} of its 2000 tokens"
    );
}

#[tokio::test]
async fn prompts_over_the_context_and_bad_params_are_refused() {
    let generator = spawn(|_| ());
    generator.ready().await.unwrap();
    let long = "The committee met again to discuss the budget. ".repeat(600);
    let err = generator
        .generate(vec![ChatMessage::user(long)], GenerateParams::default())
        .await
        .unwrap_err();
    let status = err.into_status("question");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("over the model's limit of 4095"),
        "{}",
        status.message()
    );

    let zero = GenerateParams {
        max_new_tokens: 0,
        ..GenerateParams::default()
    };
    let err = generator.generate(question(), zero).await.unwrap_err();
    assert_eq!(err.into_status("params").code(), Code::InvalidArgument);
    let err = generator
        .generate(Vec::new(), GenerateParams::default())
        .await;
    assert!(matches!(err, Err(WorkerError::Rejected(_))));
}
