//! Windows and rules together: every scored document is added to each rule's windows
//! under its keys (the entities it mentions, or its topic), closed windows are judged, and
//! the resulting alerts returned. Pure: no I/O, no clocks besides what it is given.

use crate::alert::Alert;
use crate::config::{KeyKind, RuleConfig};
use crate::rules::{KeyState, SurgeRule};
use crate::scores::DocumentScore;
use crate::window::{ClosedWindow, Observed, Windows};
use std::collections::HashMap;

/// One rule's windows and per-key states.
#[derive(Debug)]
struct RuleRun {
    name: String,
    key: KeyKind,
    rule: SurgeRule,
    windows: Windows,
    states: HashMap<String, KeyState>,
}

/// Window state and alert rules for the whole stream.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<RuleRun>,
}

impl Engine {
    pub fn new(rules: &[RuleConfig]) -> Self {
        let rules = rules
            .iter()
            .map(|config| RuleRun {
                name: config.name.clone(),
                key: config.key,
                rule: config.surge_rule(),
                windows: Windows::new(config.window_spec()),
                states: HashMap::new(),
            })
            .collect();
        Self { rules }
    }

    /// Adds a document to every rule's windows; returns how many rules found it late.
    pub fn observe(&mut self, score: &DocumentScore) -> usize {
        let mut late = 0;
        for run in &mut self.rules {
            let keys: Vec<(&str, bool)> = match run.key {
                KeyKind::Entity => score
                    .entities
                    .iter()
                    .map(|e| (e.entity.as_str(), e.negative))
                    .collect(),
                KeyKind::Topic => vec![(score.topic.as_str(), score.negative)],
            };
            let mut observed_late = false;
            for (key, negative) in keys {
                let observed = run
                    .windows
                    .observe(key, score.event_time_ms, &score.id, negative);
                observed_late |= observed == Observed::Late;
            }
            run.windows.advance(score.event_time_ms);
            late += usize::from(observed_late);
        }
        late
    }

    /// The earliest event time still in flight in the pipeline, if any.
    pub fn set_hold(&mut self, hold_ms: Option<i64>) {
        for run in &mut self.rules {
            run.windows.set_hold(hold_ms);
        }
    }

    /// Processing time since the last document, for idle streams.
    pub fn set_idle(&mut self, idle_ms: i64) {
        for run in &mut self.rules {
            run.windows.set_idle(idle_ms);
        }
    }

    /// Judges every window the watermark has passed.
    pub fn close_ready(&mut self) -> Vec<Alert> {
        self.judge_with(Windows::close_ready)
    }

    /// Judges every open window (the input ended).
    pub fn flush(&mut self) -> Vec<Alert> {
        self.judge_with(Windows::close_all)
    }

    pub fn open_windows(&self) -> usize {
        self.rules.iter().map(|r| r.windows.open_windows()).sum()
    }

    fn judge_with(&mut self, close: fn(&mut Windows) -> Vec<ClosedWindow>) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for run in &mut self.rules {
            for closed in close(&mut run.windows) {
                let state = run
                    .states
                    .entry(closed.key.clone())
                    .or_insert_with(|| KeyState::new(&run.rule));
                if let Some(decision) = run.rule.judge(state, &closed) {
                    alerts.push(Alert::new(&run.name, run.key, &closed, &decision));
                }
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::AlertState;
    use crate::scores::{EntityScore, Position, TimeSource};

    const MIN: i64 = 60_000;

    fn rule(key: KeyKind) -> RuleConfig {
        RuleConfig {
            name: format!("{}-surge", key.as_str()),
            key,
            window_seconds: 600,
            slide_seconds: None,
            allowed_lateness_seconds: 60,
            min_documents: 4,
            enter_share: 0.6,
            exit_share: 0.3,
            min_lift: 0.3,
            baseline_alpha: 0.3,
            baseline_prior: 0.2,
            cooldown_seconds: 3_600,
        }
    }

    fn document(id: usize, minute: i64, entity: &str, negative: bool) -> DocumentScore {
        DocumentScore {
            id: format!("d{id}"),
            source: None,
            event_time: String::new(),
            event_time_ms: minute * MIN,
            time_source: TimeSource::PublishedAt,
            label: String::new(),
            negative,
            probabilities: vec![],
            topic: "earnings".into(),
            topic_score: 1.0,
            entities: vec![EntityScore {
                entity: entity.into(),
                label: String::new(),
                negative,
                probabilities: vec![],
            }],
            tokens: 10,
            pieces: 1,
            position: Position {
                partition: 0,
                offset: id as i64,
            },
        }
    }

    /// Calm news for two companies, then a negative burst for one of them, then calm.
    fn stream() -> Vec<DocumentScore> {
        let mut docs = Vec::new();
        for minute in 0..120 {
            let burst = (40..60).contains(&minute);
            docs.push(document(
                docs.len(),
                minute,
                "HRBK",
                burst || minute % 7 == 0,
            ));
            docs.push(document(docs.len(), minute, "QLMT", minute % 6 == 0));
        }
        docs
    }

    fn alerts(engine: &mut Engine, docs: &[DocumentScore]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for doc in docs {
            engine.observe(doc);
            alerts.extend(engine.close_ready());
        }
        alerts.extend(engine.flush());
        alerts
    }

    #[test]
    fn a_burst_raises_once_for_its_entity_and_clears_once() {
        let mut engine = Engine::new(&[rule(KeyKind::Entity)]);
        let alerts = alerts(&mut engine, &stream());
        let seen: Vec<(&str, AlertState, i64)> = alerts
            .iter()
            .map(|a| (a.key.as_str(), a.state, a.window_start_ms / MIN))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("HRBK", AlertState::Raised, 40),
                ("HRBK", AlertState::Cleared, 60)
            ]
        );
        assert_eq!(alerts[0].documents, 10);
        assert_eq!(alerts[0].negatives, 10);
        assert_eq!(alerts[0].document_ids.len(), 10);
    }

    #[test]
    fn out_of_order_arrival_within_lateness_gives_the_same_alerts() {
        let mut docs = stream();
        // Swap neighbours: arrival order no longer follows event time.
        for pair in docs.chunks_mut(4) {
            pair.reverse();
        }
        let mut engine = Engine::new(&[rule(KeyKind::Entity)]);
        let shuffled = alerts(&mut engine, &docs);
        let mut engine = Engine::new(&[rule(KeyKind::Entity)]);
        assert_eq!(shuffled, alerts(&mut engine, &stream()));
    }

    #[test]
    fn redelivered_documents_do_not_change_the_outcome() {
        let mut twice = stream();
        twice.extend(
            stream()
                .into_iter()
                .filter(|d| d.event_time_ms >= 119 * MIN),
        );
        let mut engine = Engine::new(&[rule(KeyKind::Entity)]);
        let again = alerts(&mut engine, &twice);
        let mut engine = Engine::new(&[rule(KeyKind::Entity)]);
        assert_eq!(again, alerts(&mut engine, &stream()));
    }

    #[test]
    fn topics_are_judged_by_document_sentiment() {
        // Half the documents are about the bursting company: a lower bar for the topic.
        let mut topic = rule(KeyKind::Topic);
        topic.enter_share = 0.5;
        let mut engine = Engine::new(&[topic]);
        let alerts = alerts(&mut engine, &stream());
        assert!(alerts.iter().all(|a| a.key == "earnings"));
        assert_eq!(alerts.iter().filter(|a| a.state.is_raised()).count(), 1);
    }

    #[test]
    fn documents_after_their_windows_closed_are_late() {
        let mut engine = Engine::new(&[rule(KeyKind::Entity)]);
        engine.observe(&document(0, 30, "HRBK", false));
        assert_eq!(engine.observe(&document(1, 5, "HRBK", true)), 1);
        assert_eq!(engine.observe(&document(2, 29, "HRBK", true)), 0);
    }

    #[test]
    fn idle_time_closes_windows() {
        let mut engine = Engine::new(&[rule(KeyKind::Entity)]);
        engine.observe(&document(0, 1, "HRBK", false));
        assert_eq!(engine.open_windows(), 1);
        engine.set_idle(20 * MIN);
        engine.close_ready();
        assert_eq!(engine.open_windows(), 0);
    }
}
