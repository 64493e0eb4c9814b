//! The part of the pipeline every source shares: documents in, pieces batched through the
//! scorer (several batches in flight), pieces combined, scores produced and handed to the
//! window engine, and finished positions out, in whatever order they finish.

use crate::MonitorError;
use crate::config::ProcessingConfig;
use crate::document::Document;
use crate::metrics;
use crate::outputs::{EngineInput, KafkaOut};
use crate::pieces::{Assembler, Piece, split};
use crate::scorer::{PieceScore, Scorer};
use crate::scores::{DocumentScore, Position, combine};
use longview_worker::WorkerError;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Retries of a batch the model refused for now (queue full, still loading).
const MAX_RETRIES: u32 = 30;

/// A document between receipt and its last piece being scored.
struct Pending {
    document: Document,
    position: Position,
    arrival_ms: i64,
    received: Instant,
    pieces: Vec<Option<PieceScore>>,
    remaining: usize,
}

enum Outcome {
    Scored {
        pieces: Vec<Piece>,
        result: Result<Vec<PieceScore>, WorkerError>,
        attempt: u32,
    },
    Finished(Vec<Position>),
    Failed(MonitorError),
}

/// Event times of documents accepted and not yet observed by the engine: the engine holds
/// its watermark at the earliest, so documents finishing out of order are never late.
#[derive(Clone, Debug, Default)]
pub struct InFlightTimes(Arc<Mutex<BTreeMap<i64, usize>>>);

impl InFlightTimes {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, event_ms: i64) {
        *self.lock().entry(event_ms).or_default() += 1;
    }

    pub fn remove(&self, event_ms: i64) {
        let mut times = self.lock();
        if let Some(count) = times.get_mut(&event_ms) {
            *count -= 1;
            if *count == 0 {
                times.remove(&event_ms);
            }
        }
    }

    pub fn earliest(&self) -> Option<i64> {
        self.lock().keys().next().copied()
    }
}

/// Batches, scoring and output of documents; the source decides when to feed it.
pub struct Processor {
    scorer: Arc<Scorer>,
    config: ProcessingConfig,
    assembler: Assembler,
    pending: HashMap<u64, Pending>,
    next_slot: u64,
    tasks: JoinSet<Outcome>,
    scoring: usize,
    finishing: usize,
    scores: Option<KafkaOut>,
    engine: mpsc::Sender<EngineInput>,
    times: InFlightTimes,
}

impl Processor {
    pub fn new(
        scorer: Arc<Scorer>,
        config: ProcessingConfig,
        scores: Option<KafkaOut>,
        engine: mpsc::Sender<EngineInput>,
        times: InFlightTimes,
    ) -> Self {
        let linger = Duration::from_millis(config.linger_ms);
        Self {
            assembler: Assembler::new(config.batch_documents, linger),
            scorer,
            config,
            pending: HashMap::new(),
            next_slot: 0,
            tasks: JoinSet::new(),
            scoring: 0,
            finishing: 0,
            scores,
            engine,
            times,
        }
    }

    /// Takes a decoded document; it is batched on the next [`Processor::dispatch`].
    pub fn accept(&mut self, document: Document, position: Position, arrival_ms: i64) {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.times
            .add(document.published_at_ms.unwrap_or(arrival_ms));
        let pieces: Vec<Piece> = split(&document.text, self.config.piece_bytes)
            .into_iter()
            .enumerate()
            .map(|(index, text)| Piece {
                slot,
                index,
                text,
                entities: document.entities.clone(),
            })
            .collect();
        let pending = Pending {
            pieces: vec![None; pieces.len()],
            remaining: pieces.len(),
            document,
            position,
            arrival_ms,
            received: Instant::now(),
        };
        self.pending.insert(slot, pending);
        self.assembler.push(pieces, Instant::now());
    }

    /// Starts scoring batches while there is room; `force` sends partial batches now.
    pub fn dispatch(&mut self, force: bool) {
        while self.scoring < self.config.concurrent_batches {
            let Some(batch) = self.assembler.next_batch(Instant::now(), force) else {
                break;
            };
            self.spawn_scoring(batch, 0, Duration::ZERO);
        }
    }

    /// When a partial batch becomes due (if there is room to score it).
    pub fn due(&self) -> Option<Instant> {
        (self.scoring < self.config.concurrent_batches)
            .then(|| self.assembler.due())
            .flatten()
    }

    /// Documents accepted and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.pending.len() + self.finishing
    }

    pub fn has_tasks(&self) -> bool {
        !self.tasks.is_empty()
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.tasks.is_empty()
    }

    /// Waits for the next task and returns the positions it finished (often none: a
    /// scored batch still has to be produced). Call only when [`Processor::has_tasks`].
    pub async fn next(&mut self) -> Result<Vec<Position>, MonitorError> {
        let Some(joined) = self.tasks.join_next().await else {
            return Ok(Vec::new());
        };
        match joined.map_err(|e| MonitorError::Config(format!("a pipeline task failed: {e}")))? {
            Outcome::Scored {
                pieces,
                result,
                attempt,
            } => {
                self.scoring -= 1;
                self.scored(pieces, result, attempt)?;
                Ok(Vec::new())
            }
            Outcome::Finished(positions) => {
                self.finishing -= positions.len();
                Ok(positions)
            }
            Outcome::Failed(err) => Err(err),
        }
    }

    fn spawn_scoring(&mut self, pieces: Vec<Piece>, attempt: u32, delay: Duration) {
        self.scoring += 1;
        let scorer = self.scorer.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let started = Instant::now();
            let result = scorer.score(&pieces).await;
            metrics::batch(started.elapsed());
            Outcome::Scored {
                pieces,
                result,
                attempt,
            }
        });
    }

    fn scored(
        &mut self,
        pieces: Vec<Piece>,
        result: Result<Vec<PieceScore>, WorkerError>,
        attempt: u32,
    ) -> Result<(), MonitorError> {
        let scores = match result {
            Ok(scores) => scores,
            Err(err @ (WorkerError::QueueFull { .. } | WorkerError::Loading))
                if attempt < MAX_RETRIES =>
            {
                let delay = Duration::from_millis(50 << attempt.min(6));
                tracing::debug!(error = %err, attempt, "batch refused for now; retrying");
                self.spawn_scoring(pieces, attempt + 1, delay);
                return Ok(());
            }
            Err(err) => return Err(err.into()),
        };
        let mut done = Vec::new();
        for (piece, score) in pieces.into_iter().zip(scores) {
            let Some(pending) = self.pending.get_mut(&piece.slot) else {
                continue;
            };
            pending.pieces[piece.index] = Some(score);
            pending.remaining -= 1;
            if pending.remaining == 0 {
                done.extend(self.pending.remove(&piece.slot));
            }
        }
        if !done.is_empty() {
            self.spawn_finishing(done);
        }
        Ok(())
    }

    /// Produces the scores, hands them to the engine, then reports the positions done.
    fn spawn_finishing(&mut self, done: Vec<Pending>) {
        self.finishing += done.len();
        let scores: Vec<(DocumentScore, Instant)> = done
            .into_iter()
            .map(|p| {
                let pieces: Vec<PieceScore> = p.pieces.into_iter().flatten().collect();
                let score = combine(&self.scorer, &p.document, p.position, p.arrival_ms, &pieces);
                (score, p.received)
            })
            .collect();
        let out = self.scores.clone();
        let engine = self.engine.clone();
        self.tasks.spawn(async move {
            if let Some(out) = &out {
                let sends = scores.iter().map(|(score, _)| async move {
                    let json = serde_json::to_vec(score).unwrap_or_default();
                    out.send(Some(score.id.as_bytes()), Some(&json), None).await
                });
                for sent in futures::future::join_all(sends).await {
                    if let Err(err) = sent {
                        return Outcome::Failed(err);
                    }
                }
            }
            let mut positions = Vec::with_capacity(scores.len());
            for (score, received) in scores {
                positions.push(score.position);
                metrics::document_finished(received.elapsed());
                // The engine stops only after the sources do; a closed channel means
                // shutdown, and the windows are lost with the process anyway.
                let _ = engine.send(EngineInput::Document(Box::new(score))).await;
            }
            Outcome::Finished(positions)
        });
    }
}
