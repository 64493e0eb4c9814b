//! Alert rules: a negative-share surge against the key's own baseline, judged once per
//! closed window. Pure state machines, so every path is unit-tested without a model.
//!
//! Per (rule, key): windows below the minimum volume are ignored; otherwise the negative
//! share is compared with an exponentially weighted moving average of the key's earlier
//! shares (the baseline). A surge raises when the share reaches `enter_share` and beats the
//! baseline by `min_lift`; a raised key clears only when the share falls to `exit_share`
//! (hysteresis), and after a clear it cannot raise again for `cooldown_ms` of event time.
//! The baseline learns only from normal windows, so a surge does not teach itself.

use crate::window::{ClosedWindow, Window};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What an alert rule looks at and when it fires.
#[derive(Clone, Debug, PartialEq)]
pub struct SurgeRule {
    pub min_documents: u64,
    pub enter_share: f64,
    pub exit_share: f64,
    pub min_lift: f64,
    /// Weight of the newest window in the baseline (EWMA).
    pub baseline_alpha: f64,
    /// The baseline of a key not yet seen.
    pub baseline_prior: f64,
    pub cooldown_ms: i64,
}

/// An alert's transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Raised,
    Cleared,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Raised => "raised",
            AlertState::Cleared => "cleared",
        }
    }
}

/// A decision taken on one closed window.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub state: AlertState,
    pub window: Window,
    pub documents: u64,
    pub negatives: u64,
    pub negative_share: f64,
    /// The baseline the window was judged against.
    pub baseline: f64,
}

/// One key's memory under one rule.
#[derive(Clone, Debug)]
pub struct KeyState {
    baseline: f64,
    raised: bool,
    /// End of the window of the last raise or clear (event time).
    last_change_ms: Option<i64>,
    /// Windows already decided on: a (rule, key, window) alerts at most once.
    decided: BTreeSet<Window>,
}

impl KeyState {
    pub fn new(rule: &SurgeRule) -> Self {
        Self {
            baseline: rule.baseline_prior,
            raised: false,
            last_change_ms: None,
            decided: BTreeSet::new(),
        }
    }

    pub fn baseline(&self) -> f64 {
        self.baseline
    }

    pub fn is_raised(&self) -> bool {
        self.raised
    }
}

/// How many decided windows a key remembers for deduplication.
const DECIDED_MEMORY: usize = 64;

impl SurgeRule {
    /// Judges one closed window of a key, updating the key's state; returns the alert
    /// transition, if any.
    pub fn judge(&self, state: &mut KeyState, closed: &ClosedWindow) -> Option<Decision> {
        let documents = closed.bucket.count();
        if documents < self.min_documents.max(1) || state.decided.contains(&closed.window) {
            return None;
        }
        let negatives = closed.bucket.negatives();
        let share = negatives as f64 / documents as f64;
        let baseline = state.baseline;
        let next = match state.raised {
            false if self.surges(share, baseline) && !self.cooling(state, closed.window) => {
                Some(AlertState::Raised)
            }
            false => {
                state.baseline += self.baseline_alpha * (share - state.baseline);
                None
            }
            true if share <= self.exit_share => Some(AlertState::Cleared),
            true => None,
        }?;
        state.raised = next == AlertState::Raised;
        state.last_change_ms = Some(closed.window.end_ms);
        remember(&mut state.decided, closed.window);
        Some(Decision {
            state: next,
            window: closed.window,
            documents,
            negatives,
            negative_share: share,
            baseline,
        })
    }

    fn surges(&self, share: f64, baseline: f64) -> bool {
        share >= self.enter_share && share - baseline >= self.min_lift
    }

    fn cooling(&self, state: &KeyState, window: Window) -> bool {
        state
            .last_change_ms
            .is_some_and(|last| window.end_ms - last < self.cooldown_ms)
    }
}

fn remember(decided: &mut BTreeSet<Window>, window: Window) {
    decided.insert(window);
    while decided.len() > DECIDED_MEMORY {
        decided.pop_first();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Bucket;

    fn rule() -> SurgeRule {
        SurgeRule {
            min_documents: 5,
            enter_share: 0.6,
            exit_share: 0.3,
            min_lift: 0.3,
            baseline_alpha: 0.5,
            baseline_prior: 0.2,
            cooldown_ms: 100,
        }
    }

    /// A window ending at `end` (size 10) with `documents` of which `negatives` negative.
    fn closed(end: i64, documents: u64, negatives: u64) -> ClosedWindow {
        let documents = (0..documents)
            .map(|i| (format!("d{end}-{i}"), i < negatives))
            .collect();
        ClosedWindow {
            key: "HRBK".into(),
            window: Window {
                start_ms: end - 10,
                end_ms: end,
            },
            bucket: Bucket { documents },
        }
    }

    /// Runs a series of (documents, negatives) windows, returning the transitions.
    fn run(rule: &SurgeRule, series: &[(u64, u64)]) -> Vec<(i64, AlertState)> {
        let mut state = KeyState::new(rule);
        series
            .iter()
            .enumerate()
            .filter_map(|(i, &(n, neg))| {
                let end = (i as i64 + 1) * 10;
                rule.judge(&mut state, &closed(end, n, neg))
                    .map(|d| (end, d.state))
            })
            .collect()
    }

    #[test]
    fn a_surge_raises_once_and_clears_once() {
        let series = [
            (10, 1),
            (10, 2),
            (10, 8),
            (10, 9),
            (10, 7),
            (10, 2),
            (10, 1),
        ];
        assert_eq!(
            run(&rule(), &series),
            vec![(30, AlertState::Raised), (60, AlertState::Cleared)]
        );
    }

    #[test]
    fn shares_between_the_thresholds_do_not_flap() {
        // Raised at 0.8, then hovering between exit (0.3) and enter (0.6): no clear, no
        // second raise.
        let series = [(10, 8), (10, 5), (10, 4), (10, 5), (10, 4), (10, 5)];
        assert_eq!(run(&rule(), &series), vec![(10, AlertState::Raised)]);
    }

    #[test]
    fn low_volume_windows_are_ignored() {
        let series = [(4, 4), (3, 3), (1, 1)];
        assert!(run(&rule(), &series).is_empty());
    }

    #[test]
    fn the_baseline_must_be_beaten_by_the_lift() {
        // A key that is always 70% negative is not surging: its baseline catches up.
        let mut always = vec![(10, 7); 1];
        let mut rule = rule();
        rule.enter_share = 0.65;
        rule.baseline_prior = 0.7;
        always.extend([(10, 7); 5]);
        assert!(run(&rule, &always).is_empty());
    }

    #[test]
    fn the_baseline_learns_from_normal_windows_only() {
        let rule = rule();
        let mut state = KeyState::new(&rule);
        rule.judge(&mut state, &closed(10, 10, 0));
        assert!((state.baseline() - 0.1).abs() < 1e-9);
        rule.judge(&mut state, &closed(20, 10, 9));
        assert!(state.is_raised());
        rule.judge(&mut state, &closed(30, 10, 10));
        assert!(
            (state.baseline() - 0.1).abs() < 1e-9,
            "surge windows do not teach"
        );
    }

    #[test]
    fn cooldown_blocks_a_quick_second_raise() {
        let mut rule = rule();
        rule.cooldown_ms = 30;
        // Raise at 10, clear at 20, surge again at 30 (within 30 ms of 20) and 50 (after).
        let series = [(10, 9), (10, 0), (10, 9), (10, 0), (10, 9)];
        assert_eq!(
            run(&rule, &series),
            vec![
                (10, AlertState::Raised),
                (20, AlertState::Cleared),
                (50, AlertState::Raised)
            ]
        );
    }

    #[test]
    fn a_window_is_decided_at_most_once() {
        let rule = rule();
        let mut state = KeyState::new(&rule);
        let window = closed(10, 10, 9);
        assert!(rule.judge(&mut state, &window).is_some());
        let mut again = KeyState::new(&rule);
        again.decided = state.decided.clone();
        assert!(rule.judge(&mut again, &window).is_none());
    }

    #[test]
    fn the_decision_reports_what_it_saw() {
        let rule = rule();
        let mut state = KeyState::new(&rule);
        let decision = rule.judge(&mut state, &closed(10, 8, 6)).unwrap();
        assert_eq!((decision.documents, decision.negatives), (8, 6));
        assert!((decision.negative_share - 0.75).abs() < 1e-9);
        assert!((decision.baseline - 0.2).abs() < 1e-9);
    }

    #[test]
    fn dedup_memory_is_bounded() {
        let mut decided = BTreeSet::new();
        for end in 0..200 {
            remember(
                &mut decided,
                Window {
                    start_ms: end - 1,
                    end_ms: end,
                },
            );
        }
        assert_eq!(decided.len(), DECIDED_MEMORY);
        assert_eq!(decided.first().unwrap().end_ms, 200 - DECIDED_MEMORY as i64);
    }
}
