//! Logging set-up: human-readable by default, JSON for log pipelines.

use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logging flags, shared by every command.
#[derive(Clone, Debug, Args)]
pub struct LogArgs {
    /// Log filter in tracing's EnvFilter syntax, e.g. "info" or "longview_worker=debug".
    #[arg(
        long = "log-level",
        env = "LONGVIEW_LOG",
        default_value = "info",
        global = true
    )]
    pub level: String,
    /// Log line format.
    #[arg(long = "log-format", env = "LONGVIEW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub format: LogFormat,
}

/// Installs the global subscriber; logs go to stderr so command output stays clean.
pub fn init(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match args.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
