//! `longview bench generate`: prompt and generated tokens per second of the local GGUF
//! generator, beside an OpenAI-compatible reference server (e.g. llama.cpp's serving the
//! same file) when one is given, in one run.

use clap::Args;
use longview_models::pull::default_models_root;
use longview_models::pull::{DEFAULT_GENERATOR, default_generator_dir, default_generator_file};
use longview_worker::{
    ChatMessage, GenerateParams, GenerationStats, Generator, GeneratorConfig, LocalGeneratorConfig,
    OpenAiConfig,
};
use std::path::PathBuf;

#[derive(Clone, Debug, Args)]
pub struct BenchGenerateArgs {
    /// A llama-architecture GGUF chat model (default: SmolLM2-135M-Instruct, pulled if missing).
    #[arg(long, env = "LONGVIEW_GENERATOR_MODEL")]
    pub generator_model: Option<PathBuf>,
    /// Where pulled models are kept.
    #[arg(long, env = "LONGVIEW_MODELS_ROOT")]
    pub models_root: Option<PathBuf>,
    /// Approximate prompt length in tokens (the chat template adds a few).
    #[arg(long, env = "LONGVIEW_BENCH_PROMPT_TOKENS", default_value_t = 256)]
    pub prompt_tokens: usize,
    /// Tokens generated per answer (end-of-turn ignored, so every answer is this long).
    #[arg(long, env = "LONGVIEW_BENCH_NEW_TOKENS", default_value_t = 64)]
    pub new_tokens: usize,
    /// Answers measured per generator (after one warm-up answer).
    #[arg(long, env = "LONGVIEW_BENCH_ROUNDS", default_value_t = 3)]
    pub rounds: usize,
    /// API root of an OpenAI-compatible server to measure beside the local generator.
    #[arg(long, env = "LONGVIEW_BENCH_REFERENCE_URL")]
    pub reference_url: Option<String>,
    /// The model name the reference server serves.
    #[arg(
        long,
        env = "LONGVIEW_BENCH_REFERENCE_MODEL",
        default_value = "reference"
    )]
    pub reference_model: String,
}

/// Medians of one generator's answers.
struct Figures {
    prompt_tokens: usize,
    prompt_per_second: f64,
    generated_per_second: f64,
}

pub async fn run(args: BenchGenerateArgs) -> anyhow::Result<()> {
    let local = Generator::spawn(GeneratorConfig::Local(LocalGeneratorConfig::new(
        model_file(&args)?,
    )))?;
    let info = local.ready().await?;
    println!(
        "generator: {} ({}) on {}, {} threads; ~{} prompt tokens, {} new tokens, {} rounds",
        info.name,
        info.version,
        info.device,
        rayon::current_num_threads(),
        args.prompt_tokens,
        args.new_tokens,
        args.rounds
    );
    let ours = measure(&local, &args).await?;
    let reference = match &args.reference_url {
        Some(url) => {
            let config = OpenAiConfig::new(url.clone(), args.reference_model.clone());
            Some(measure(&Generator::spawn(GeneratorConfig::OpenAi(config))?, &args).await?)
        }
        None => None,
    };
    print_table(&ours, reference.as_ref());
    Ok(())
}

fn model_file(args: &BenchGenerateArgs) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.generator_model {
        return Ok(path.clone());
    }
    let root = args.models_root.clone().unwrap_or_else(default_models_root);
    DEFAULT_GENERATOR.ensure(&default_generator_dir(&root))?;
    Ok(default_generator_file(&root))
}

async fn measure(generator: &Generator, args: &BenchGenerateArgs) -> anyhow::Result<Figures> {
    let params = GenerateParams {
        max_new_tokens: args.new_tokens,
        ignore_eos: true,
        ..GenerateParams::default()
    };
    let mut runs: Vec<GenerationStats> = Vec::new();
    for round in 0..=args.rounds {
        let stream = generator.generate(messages(round, args.prompt_tokens), params.clone());
        let (_, stats) = stream.await?.collect_text().await?;
        // Round 0 warms up (and a remote server's prompt cache learns nothing useful:
        // every round's prompt differs from its first tokens on).
        if round > 0 {
            runs.push(stats);
        }
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Ok(Figures {
        prompt_tokens: runs.iter().map(|s| s.prompt_tokens).max().unwrap_or(0),
        prompt_per_second: median(
            runs.iter()
                .map(|s| s.prompt_tokens as f64 / s.prompt_seconds)
                .collect(),
        ),
        generated_per_second: median(
            runs.iter()
                .map(|s| s.generated_tokens as f64 / s.generation_seconds)
                .collect(),
        ),
    })
}

/// A question over a passage of about `tokens` tokens (English runs ~0.75 words a token),
/// different from its first word in every round.
fn messages(round: usize, tokens: usize) -> Vec<ChatMessage> {
    let words: Vec<&str> = crate::bench::CORPUS
        .iter()
        .cycle()
        .flat_map(|sentence| sentence.split(' '))
        .take(tokens * 3 / 4)
        .collect();
    vec![
        ChatMessage::system(format!("Round {round}. Answer from the passage.")),
        ChatMessage::user(format!(
            "Passage: {}\n\nQuestion: what happened?",
            words.join(" ")
        )),
    ]
}

fn print_table(ours: &Figures, reference: Option<&Figures>) {
    println!(
        "{:>22}  {:>14}  {:>14}  {:>8}",
        "", "longview", "reference", "ratio"
    );
    let row = |label: &str, value: f64, other: Option<f64>| match other {
        Some(other) => println!(
            "{label:>22}  {value:>14.1}  {other:>14.1}  {:>7.2}x",
            value / other
        ),
        None => println!("{label:>22}  {value:>14.1}  {:>14}  {:>8}", "-", "-"),
    };
    println!(
        "{:>22}  {:>14}  {:>14}",
        "prompt tokens",
        ours.prompt_tokens,
        reference.map_or("-".into(), |r| r.prompt_tokens.to_string())
    );
    row(
        "prompt tokens/s",
        ours.prompt_per_second,
        reference.map(|r| r.prompt_per_second),
    );
    row(
        "generated tokens/s",
        ours.generated_per_second,
        reference.map(|r| r.generated_per_second),
    );
    if reference.is_some() {
        println!("(reference prompt time is its time to first token over HTTP)");
    }
}
