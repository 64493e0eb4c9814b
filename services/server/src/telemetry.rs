//! Logging set-up: human-readable by default, JSON for log pipelines, and OpenTelemetry
//! traces alongside when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use crate::otel::{self, OtelGuard};
use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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

/// Installs the global subscriber; logs go to stderr so command output stays clean. Call
/// inside the Tokio runtime (the OTLP exporter connects from there) and keep the guard
/// until the end: dropping it flushes the spans not yet sent.
pub fn init(args: &LogArgs) -> Option<OtelGuard> {
    let filter = EnvFilter::try_new(&args.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let lines = match args.format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    let (traces, guard) = match otel::layer() {
        Ok(Some((layer, guard))) => (Some(layer), Some(guard)),
        Ok(None) => (None, None),
        Err(err) => {
            eprintln!("longview: OpenTelemetry export is off: {err:#}");
            (None, None)
        }
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(traces)
        .try_init();
    guard
}
