//! Event-time windows per key: tumbling (slide = size) or sliding (slide < size), with
//! allowed lateness. A window closes once the watermark (the latest event time seen, minus
//! the allowed lateness) passes its end; a document arriving after every window it
//! belongs to has closed is late and dropped (and counted by the caller).
//!
//! The pipeline finishes documents out of order, so the caller can also hold the
//! watermark at the earliest event time still in flight: reordering inside the pipeline
//! then never makes a document late.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The shape of a rule's windows, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    pub size_ms: i64,
    /// Equal to `size_ms` for tumbling windows.
    pub slide_ms: i64,
    pub allowed_lateness_ms: i64,
}

/// One window's bounds, start inclusive, end exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl WindowSpec {
    /// Every window containing `event_ms`, earliest start first.
    pub fn windows_for(&self, event_ms: i64) -> Vec<Window> {
        let last_start = event_ms.div_euclid(self.slide_ms) * self.slide_ms;
        let mut windows: Vec<Window> =
            std::iter::successors(Some(last_start), |s| Some(s - self.slide_ms))
                .take_while(|start| start + self.size_ms > event_ms)
                .map(|start_ms| Window {
                    start_ms,
                    end_ms: start_ms + self.size_ms,
                })
                .collect();
        windows.reverse();
        windows
    }
}

/// A key's documents in one window: each document once, however often it arrives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bucket {
    /// Document id → whether it counted as negative for this key.
    pub documents: BTreeMap<String, bool>,
}

impl Bucket {
    pub fn count(&self) -> u64 {
        self.documents.len() as u64
    }

    pub fn negatives(&self) -> u64 {
        self.documents.values().filter(|&&n| n).count() as u64
    }
}

/// A window that closed, with what it held for one key.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedWindow {
    pub key: String,
    pub window: Window,
    pub bucket: Bucket,
}

/// What happened to an observed document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Added to this many open windows.
    Added(usize),
    /// Every window it belongs to had closed.
    Late,
}

/// Open windows of one spec, for every key.
#[derive(Debug)]
pub struct Windows {
    spec: WindowSpec,
    /// Ordered by end, so closing takes a prefix.
    open: BTreeMap<(Window, String), Bucket>,
    max_event_ms: Option<i64>,
    /// Processing time passed with no events, added to the watermark (idle streams).
    idle_ms: i64,
    /// The highest watermark reached: it never goes back, even when an idle stream
    /// wakes with older event times.
    floor_ms: Option<i64>,
    /// The earliest event time of documents received but not yet observed.
    hold_ms: Option<i64>,
}

impl Windows {
    pub fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            open: BTreeMap::new(),
            max_event_ms: None,
            idle_ms: 0,
            floor_ms: None,
            hold_ms: None,
        }
    }

    /// Everything up to this event time is treated as complete.
    pub fn watermark(&self) -> Option<i64> {
        let moving = self
            .max_event_ms
            .map(|m| m + self.idle_ms - self.spec.allowed_lateness_ms);
        let held = match (moving, self.hold_ms) {
            (Some(m), Some(h)) => Some(m.min(h)),
            (moving, _) => moving,
        };
        held.max(self.floor_ms)
    }

    /// Moves event time forward (never back).
    pub fn advance(&mut self, event_ms: i64) {
        self.floor_ms = self.watermark();
        self.max_event_ms = Some(self.max_event_ms.map_or(event_ms, |m| m.max(event_ms)));
        self.idle_ms = 0;
    }

    /// Lets an idle stream's windows close: the watermark moves with processing time
    /// once nothing has arrived for a while.
    pub fn set_idle(&mut self, idle_ms: i64) {
        self.idle_ms = idle_ms.max(0);
    }

    /// Keeps windows holding `hold_ms` (the earliest event time still in flight) open.
    pub fn set_hold(&mut self, hold_ms: Option<i64>) {
        self.hold_ms = hold_ms;
    }

    /// Adds a document to the open windows of `key` containing `event_ms`.
    pub fn observe(
        &mut self,
        key: &str,
        event_ms: i64,
        document: &str,
        negative: bool,
    ) -> Observed {
        let watermark = self.watermark();
        let mut added = 0;
        for window in self.spec.windows_for(event_ms) {
            if watermark.is_some_and(|w| window.end_ms <= w) {
                continue;
            }
            let bucket = self.open.entry((window, key.to_string())).or_default();
            let counted = bucket
                .documents
                .entry(document.to_string())
                .or_insert(false);
            *counted |= negative;
            added += 1;
        }
        match added {
            0 => Observed::Late,
            n => Observed::Added(n),
        }
    }

    /// Closes and returns every window the watermark has passed, earliest end first.
    pub fn close_ready(&mut self) -> Vec<ClosedWindow> {
        let Some(watermark) = self.watermark() else {
            return Vec::new();
        };
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if entry.key().0.end_ms > watermark {
                break;
            }
            let ((window, key), bucket) = entry.remove_entry();
            closed.push(ClosedWindow {
                key,
                window,
                bucket,
            });
        }
        closed
    }

    /// Closes every window (the input ended).
    pub fn close_all(&mut self) -> Vec<ClosedWindow> {
        std::mem::take(&mut self.open)
            .into_iter()
            .map(|((window, key), bucket)| ClosedWindow {
                key,
                window,
                bucket,
            })
            .collect()
    }

    pub fn open_windows(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn tumbling(size: i64, lateness: i64) -> WindowSpec {
        WindowSpec {
            size_ms: size,
            slide_ms: size,
            allowed_lateness_ms: lateness,
        }
    }

    fn sliding(size: i64, slide: i64, lateness: i64) -> WindowSpec {
        WindowSpec {
            size_ms: size,
            slide_ms: slide,
            allowed_lateness_ms: lateness,
        }
    }

    fn w(start: i64, end: i64) -> Window {
        Window {
            start_ms: start,
            end_ms: end,
        }
    }

    #[test]
    fn tumbling_windows_hold_each_time_once() {
        let spec = tumbling(10 * MIN, 0);
        assert_eq!(spec.windows_for(0), vec![w(0, 10 * MIN)]);
        assert_eq!(spec.windows_for(10 * MIN - 1), vec![w(0, 10 * MIN)]);
        assert_eq!(spec.windows_for(10 * MIN), vec![w(10 * MIN, 20 * MIN)]);
    }

    #[test]
    fn sliding_windows_overlap() {
        let spec = sliding(30 * MIN, 10 * MIN, 0);
        let windows = spec.windows_for(25 * MIN);
        assert_eq!(
            windows,
            vec![w(0, 30 * MIN), w(10 * MIN, 40 * MIN), w(20 * MIN, 50 * MIN)]
        );
    }

    #[test]
    fn negative_times_fall_in_the_right_window() {
        assert_eq!(tumbling(10, 0).windows_for(-1), vec![w(-10, 0)]);
    }

    #[test]
    fn windows_close_when_the_watermark_passes_their_end() {
        let mut windows = Windows::new(tumbling(10 * MIN, 2 * MIN));
        windows.advance(MIN);
        windows.observe("HRBK", MIN, "a", true);
        windows.advance(11 * MIN);
        assert!(windows.close_ready().is_empty(), "lateness keeps it open");
        windows.advance(12 * MIN);
        let closed = windows.close_ready();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].window, w(0, 10 * MIN));
        assert_eq!(
            (closed[0].bucket.count(), closed[0].bucket.negatives()),
            (1, 1)
        );
    }

    #[test]
    fn late_documents_within_lateness_are_counted_after_it_dropped() {
        let mut windows = Windows::new(tumbling(10 * MIN, 2 * MIN));
        windows.advance(11 * MIN);
        assert_eq!(
            windows.observe("k", 9 * MIN, "late-ok", false),
            Observed::Added(1)
        );
        windows.advance(13 * MIN);
        windows.close_ready();
        assert_eq!(
            windows.observe("k", 9 * MIN, "too-late", false),
            Observed::Late
        );
    }

    #[test]
    fn a_redelivered_document_counts_once() {
        let mut windows = Windows::new(tumbling(10, 0));
        windows.advance(1);
        windows.observe("k", 1, "a", false);
        windows.observe("k", 1, "a", true);
        windows.observe("k", 2, "b", false);
        let closed = windows.close_all();
        assert_eq!(
            (closed[0].bucket.count(), closed[0].bucket.negatives()),
            (2, 1)
        );
    }

    #[test]
    fn keys_have_their_own_windows_closed_in_end_order() {
        let mut windows = Windows::new(sliding(20, 10, 0));
        windows.advance(15);
        windows.observe("b", 15, "1", false);
        windows.observe("a", 15, "2", true);
        windows.advance(40);
        let closed: Vec<(String, Window)> = windows
            .close_ready()
            .into_iter()
            .map(|c| (c.key, c.window))
            .collect();
        assert_eq!(
            closed,
            vec![
                ("a".into(), w(0, 20)),
                ("b".into(), w(0, 20)),
                ("a".into(), w(10, 30)),
                ("b".into(), w(10, 30)),
            ]
        );
    }

    #[test]
    fn idle_time_moves_the_watermark_until_an_event_arrives() {
        let mut windows = Windows::new(tumbling(10, 5));
        windows.advance(3);
        windows.observe("k", 3, "a", false);
        windows.set_idle(20);
        assert_eq!(windows.watermark(), Some(18));
        assert_eq!(windows.close_ready().len(), 1);
        windows.advance(4);
        assert_eq!(
            windows.watermark(),
            Some(18),
            "the watermark never goes back"
        );
        assert_eq!(windows.observe("k", 4, "b", false), Observed::Late);
    }

    #[test]
    fn documents_in_flight_hold_the_watermark() {
        let mut windows = Windows::new(tumbling(10, 0));
        windows.set_hold(Some(5));
        windows.advance(30);
        assert_eq!(
            windows.watermark(),
            Some(5),
            "a document at 5 is still being scored"
        );
        assert!(windows.close_ready().is_empty());
        assert_eq!(windows.observe("k", 5, "slow", true), Observed::Added(1));
        windows.set_hold(None);
        assert_eq!(windows.close_ready().len(), 1);
    }

    #[test]
    fn event_time_never_goes_back() {
        let mut windows = Windows::new(tumbling(10, 0));
        windows.advance(50);
        windows.advance(20);
        assert_eq!(windows.watermark(), Some(50));
    }
}
