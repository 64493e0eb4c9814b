//! The embedded sources: JSONL from a file or stdin, so the monitor runs without a broker.
//! Each line is a message (partition 0, offset = line number); poison lines are logged
//! with their reason and counted, and the stream goes on. At the end of the input every
//! window closes, so a replay file yields all its alerts.

use crate::document::decode;
use crate::outputs::{AlertOutputs, EngineInput, Print, spawn_engine};
use crate::processor::{InFlightTimes, Processor};
use crate::scores::Position;
use crate::{Monitor, MonitorError, RunSummary, metrics};
use std::time::Instant;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::{oneshot, watch};

/// Reads JSONL documents from `reader` until it ends or `shutdown` turns true.
pub async fn run_lines<R: AsyncBufRead + Unpin>(
    monitor: &Monitor,
    reader: R,
    print: Print,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunSummary, MonitorError> {
    let outputs = AlertOutputs {
        hub: monitor.hub.clone(),
        kafka: None,
        print,
    };
    let times = InFlightTimes::default();
    let (engine, engine_task) = spawn_engine(
        monitor.engine(),
        outputs,
        monitor.idle_close(),
        times.clone(),
    );
    let processing = &monitor.config.processing;
    let mut processor = Processor::new(
        monitor.scorer.clone(),
        processing.clone(),
        None,
        engine.clone(),
        times,
    );
    let mut summary = RunSummary::default();
    let mut lines = reader.split(b'\n');
    let mut line_number = 0;
    let mut ended = false;
    while !(ended && processor.is_idle()) {
        let room = processor.in_flight() < processing.max_in_flight;
        let due = processor.due();
        tokio::select! {
            changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
            line = lines.next_segment(), if room && !ended => {
                let line = line.map_err(|source| MonitorError::Io { what: "the input".into(), source })?;
                match line {
                    None => ended = true,
                    Some(bytes) => {
                        line_number += 1;
                        read_line(&mut processor, &mut summary, &bytes, line_number, processing.max_message_bytes);
                    }
                }
            }
            done = processor.next(), if processor.has_tasks() => {
                summary.documents += done?.len() as u64;
            }
            () = sleep_until(due), if due.is_some() => {}
        }
        processor.dispatch(ended);
    }
    if ended {
        let (done, flushed) = oneshot::channel();
        if engine.send(EngineInput::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
    drop((processor, engine));
    summary.alerts = engine_task.await.unwrap_or_default();
    Ok(summary)
}

fn read_line(
    processor: &mut Processor,
    summary: &mut RunSummary,
    bytes: &[u8],
    line: i64,
    max_bytes: usize,
) {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let position = Position {
        partition: 0,
        offset: line,
    };
    match decode(Some(bytes), max_bytes) {
        Ok(document) => processor.accept(document, position, crate::now_ms()),
        Err(poison) => {
            tracing::warn!(line, reason = poison.reason(), detail = %poison, "skipping a line");
            metrics::dead_lettered(poison.reason());
            summary.dead_lettered += 1;
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}
