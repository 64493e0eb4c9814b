//! The OpenAI-compatible generator against a real server: llama.cpp's own server (the
//! xllamacpp wheel that `scripts/test` installs) serving the same SmolLM2 GGUF on
//! loopback, or any server named by LONGVIEW_TEST_OPENAI_URL.

#![allow(clippy::unwrap_used)]

mod common;

use longview_worker::{
    ChatMessage, GenerateParams, GenerationEvent, Generator, GeneratorConfig, OpenAiConfig,
    WorkerError,
};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use tonic::Code;

/// A running server: spawned here (stopped on drop) or external.
struct Server {
    url: String,
    model: String,
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Closing its stdin ends the fixture; kill in case it hangs.
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The server to test against, or `None` (and a plain "skipped") when none can run.
fn server(api_key: Option<&str>) -> Option<Server> {
    if let Ok(url) = std::env::var("LONGVIEW_TEST_OPENAI_URL") {
        let model = std::env::var("LONGVIEW_TEST_OPENAI_MODEL").unwrap_or("default".into());
        return api_key.is_none().then_some(Server {
            url,
            model,
            child: None,
        });
    }
    let Some(site) = std::env::var_os("LONGVIEW_TEST_XLLAMACPP") else {
        eprintln!(
            "skipped: no OpenAI-compatible server (scripts/test installs one and sets \
             LONGVIEW_TEST_XLLAMACPP; or set LONGVIEW_TEST_OPENAI_URL)"
        );
        return None;
    };
    let mut command = Command::new(std::env::var("LONGVIEW_PYTHON").unwrap_or("python3".into()));
    command
        .arg(common::fixture("openai/serve.py"))
        .arg(common::generator_file())
        .env("PYTHONPATH", site)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(key) = api_key {
        command.args(["--api-key", key]);
    }
    let mut child = command.spawn().expect("start the llama.cpp server fixture");
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let address = line
        .strip_prefix("LISTEN ")
        .unwrap_or_else(|| panic!("the server fixture did not start: {line:?}"));
    Some(Server {
        url: format!("{}/v1", address.trim()),
        model: "smollm2".into(),
        child: Some(child),
    })
}

fn generator(server: &Server, configure: impl FnOnce(&mut OpenAiConfig)) -> Generator {
    let mut config = OpenAiConfig::new(&server.url, &server.model);
    configure(&mut config);
    Generator::spawn(GeneratorConfig::OpenAi(config)).unwrap()
}

fn question() -> Vec<ChatMessage> {
    vec![ChatMessage::user("What is the capital of France?")]
}

fn short() -> GenerateParams {
    GenerateParams {
        max_new_tokens: 16,
        ..GenerateParams::default()
    }
}

#[tokio::test]
async fn streams_a_greedy_answer_from_a_real_server() {
    let Some(server) = server(None) else { return };
    let generator = generator(&server, |_| ());
    generator.ready().await.unwrap();

    let mut stream = generator.generate(question(), short()).await.unwrap();
    let (mut pieces, mut stats) = (Vec::new(), None);
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            GenerationEvent::Text(piece) => pieces.push(piece),
            GenerationEvent::Finished(finished) => stats = Some(finished),
        }
    }
    let stats = stats.unwrap();
    let text = pieces.concat();
    assert!(
        pieces.len() > 1,
        "the answer streamed in pieces: {pieces:?}"
    );
    assert!(text.chars().any(char::is_alphabetic), "{text:?}");
    assert!(
        stats.generated_tokens > 0 && stats.generated_tokens <= 16,
        "{stats:?}"
    );

    let (again, _) = generator
        .generate(question(), short())
        .await
        .unwrap()
        .collect_text()
        .await
        .unwrap();
    assert_eq!(again, text, "temperature 0 repeats");
}

#[tokio::test]
async fn refusals_become_the_right_status() {
    let Some(server) = server(Some("test-key")) else {
        return;
    };
    let anonymous = generator(&server, |_| ());
    let err = anonymous.generate(question(), short()).await.unwrap_err();
    assert!(err.to_string().contains("credentials"), "{err}");
    assert_eq!(err.into_status("question").code(), Code::Internal);

    let keyed = generator(&server, |c| c.api_key = Some("test-key".into()));
    keyed.generate(question(), short()).await.unwrap();

    // The fixture's context is 1024 tokens.
    let long = "The committee met again to discuss the budget. ".repeat(200);
    let err = keyed
        .generate(vec![ChatMessage::user(long)], short())
        .await
        .unwrap_err();
    assert!(matches!(err, WorkerError::Rejected(_)), "{err}");
    assert_eq!(err.into_status("question").code(), Code::InvalidArgument);
}

#[tokio::test]
async fn concurrency_limit_sheds_load_and_dropping_frees_it() {
    let Some(server) = server(None) else { return };
    let generator = generator(&server, |c| c.max_concurrent = 1);
    let endless = GenerateParams {
        max_new_tokens: 500,
        ignore_eos: true,
        ..GenerateParams::default()
    };
    let mut running = generator.generate(question(), endless).await.unwrap();
    running.next().await.unwrap().unwrap();
    let err = generator.generate(question(), short()).await.unwrap_err();
    assert!(matches!(err, WorkerError::Busy(_)), "{err}");
    assert_eq!(err.into_status("question").code(), Code::ResourceExhausted);

    // Dropping the stream ends the request; its slot comes back.
    drop(running);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match generator.generate(question(), short()).await {
            Ok(_) => break,
            Err(WorkerError::Busy(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(err) => panic!("the slot never came back: {err}"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = OpenAiConfig::new(format!("http://127.0.0.1:{port}/v1"), "m");
    let generator = Generator::spawn(GeneratorConfig::OpenAi(config)).unwrap();
    let err = generator.generate(question(), short()).await.unwrap_err();
    assert!(matches!(err, WorkerError::Unreachable(_)), "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    assert_eq!(err.into_status("question").code(), Code::Unavailable);

    let bad = OpenAiConfig::new("ftp://example/v1", "m");
    let err = Generator::spawn(GeneratorConfig::OpenAi(bad)).unwrap_err();
    assert!(err.to_string().contains("http or https"), "{err}");
}
