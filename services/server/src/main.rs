//! `longview`: parse the command line, start telemetry, run the command, map failure to an
//! exit code.

use clap::Parser;
use longview_server::cli::{Cli, Command, EvalCommand, MonitorCommand, TlsCommand, TrainCommand};
use std::process::ExitCode;

/// Exit code for invalid configuration and command lines (EX_USAGE from sysexits.h).
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if err.use_stderr() => {
            let _ = err.print();
            return ExitCode::from(EXIT_CONFIG);
        }
        // --help and --version.
        Err(err) => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::anyhow!("cannot start the async runtime: {err}")),
    };
    let traces = {
        let _inside = runtime.enter();
        longview_server::telemetry::init(&cli.log)
    };
    let result = runtime.block_on(run(cli.command));
    // Flush spans while the runtime that carries the exporter still runs.
    drop(traces);
    match result {
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
        Command::Serve(args) => longview_server::serve::command(args).await,
        Command::Embed(args) => longview_server::client::embed(args).await,
        Command::Classify(args) => longview_server::client::classify(args).await,
        Command::Sentiment(args) => longview_server::client::sentiment(args).await,
        Command::Ingest(args) => longview_server::rag_client::ingest(args).await,
        Command::Search(args) => longview_server::rag_client::search(args).await,
        Command::Ask(args) => longview_server::rag_client::ask(args).await,
        Command::Delete(args) => longview_server::rag_client::delete(args).await,
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
            EvalCommand::Rag(args) => longview_tools::eval_rag::eval_rag(args).await,
            EvalCommand::Recommend(args) => {
                longview_tools::eval_recommend::eval_recommend(args).await
            }
        },
        Command::Bench(args) => longview_tools::bench::run(args).await,
        Command::Tls(args) => match args.command {
            TlsCommand::DevCerts { out, hosts } => {
                longview_server::tls::DevCertificates::generate(&hosts)?.write(&out)
            }
        },
        Command::Monitor(args) => match args.command {
            MonitorCommand::Replay(args) => longview_server::monitor::replay(args).await,
        },
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("longview: {err:#}");
    ExitCode::FAILURE
}
