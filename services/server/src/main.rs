//! `longview`: parse the command line, start telemetry, run the command, map failure to an
//! exit code.

use clap::Parser;
use longview_server::cli::{Cli, Command, EvalCommand, TrainCommand};
use std::process::ExitCode;

/// Exit code for invalid configuration (EX_USAGE from sysexits.h).
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    longview_server::telemetry::init(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::anyhow!("cannot start the async runtime: {err}")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<longview_server::config::ConfigError>() => {
            eprintln!("longview: invalid configuration: {err:#}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(err) => fail(&err),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => longview_server::serve::run(args.into_config()?).await,
        Command::Embed(args) => longview_server::client::embed(args).await,
        Command::Classify(args) => longview_server::client::classify(args).await,
        Command::Sentiment(args) => longview_server::client::sentiment(args).await,
        Command::Recommend(args) => longview_server::recommend_client::run(args).await,
        Command::Models(args) => longview_server::models::run(args),
        Command::Train(args) => match args.command {
            TrainCommand::Classifier(args) => longview_tools::train::train_classifier(args).await,
            TrainCommand::Sentiment(args) => longview_tools::sentiment::train_command(args).await,
            TrainCommand::Recommender(args) => {
                longview_tools::recommend_model::train_recommender(args).await
            }
        },
        Command::Eval(args) => match args.command {
            EvalCommand::Classify(args) => longview_tools::eval_classify::eval_classify(args).await,
            EvalCommand::Sentiment(args) => longview_tools::sentiment::eval_command(args).await,
            EvalCommand::Recommend(args) => {
                longview_tools::eval_recommend::eval_recommend(args).await
            }
        },
        Command::Bench(args) => longview_tools::bench::run(args).await,
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("longview: {err:#}");
    ExitCode::FAILURE
}
