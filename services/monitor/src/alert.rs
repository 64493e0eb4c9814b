//! Alerts: what a rule decided on a closed window, as produced to the `alerts` topic and
//! streamed to gRPC subscribers.

use crate::config::KeyKind;
use crate::document::rfc3339;
use crate::rules::{AlertState, Decision};
use crate::window::ClosedWindow;
use longview_proto::v1 as pb;
use serde::{Deserialize, Serialize};

/// Negative documents listed in an alert, at most.
const EVIDENCE_DOCUMENTS: usize = 50;

/// A raised or cleared alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable for a (rule, key, window, state): consumers deduplicate redeliveries by it.
    pub id: String,
    pub rule: String,
    pub key_kind: KeyKind,
    pub key: String,
    pub window_start: String,
    pub window_end: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub documents: u64,
    pub negatives: u64,
    pub negative_share: f64,
    pub baseline: f64,
    pub state: AlertState,
    /// Negative documents of the window, sorted, at most 50.
    pub document_ids: Vec<String>,
}

impl Alert {
    pub fn new(rule: &str, kind: KeyKind, closed: &ClosedWindow, decision: &Decision) -> Self {
        let window = decision.window;
        let document_ids = closed
            .bucket
            .documents
            .iter()
            .filter(|(_, negative)| **negative)
            .map(|(id, _)| id.clone())
            .take(EVIDENCE_DOCUMENTS)
            .collect();
        Self {
            id: format!(
                "{rule}/{}/{}/{}-{}/{}",
                kind.as_str(),
                closed.key,
                window.start_ms,
                window.end_ms,
                decision.state.as_str()
            ),
            rule: rule.to_string(),
            key_kind: kind,
            key: closed.key.clone(),
            window_start: rfc3339(window.start_ms),
            window_end: rfc3339(window.end_ms),
            window_start_ms: window.start_ms,
            window_end_ms: window.end_ms,
            documents: decision.documents,
            negatives: decision.negatives,
            negative_share: decision.negative_share,
            baseline: decision.baseline,
            state: decision.state,
            document_ids,
        }
    }

    pub fn to_proto(&self) -> pb::Alert {
        pb::Alert {
            rule: self.rule.clone(),
            key_kind: self.key_kind.as_str().into(),
            key: self.key.clone(),
            window_start_ms: self.window_start_ms,
            window_end_ms: self.window_end_ms,
            documents: self.documents,
            negative_share: self.negative_share,
            baseline: self.baseline,
            state: self.state.as_str().into(),
            document_ids: self.document_ids.clone(),
            id: self.id.clone(),
            negatives: self.negatives,
        }
    }

    /// One line for people reading a terminal.
    pub fn summary(&self) -> String {
        format!(
            "{} {} {}={} {}..{}: {}/{} negative ({:.0}%, baseline {:.0}%)",
            self.state.as_str().to_uppercase(),
            self.rule,
            self.key_kind.as_str(),
            self.key,
            self.window_start,
            self.window_end,
            self.negatives,
            self.documents,
            self.negative_share * 100.0,
            self.baseline * 100.0
        )
    }
}

impl AlertState {
    pub fn is_raised(self) -> bool {
        self == AlertState::Raised
    }
}
