//! The monitor's configuration: Kafka names and client settings, batching, topics and
//! alert rules. Read from a TOML file (`--monitor-config`); every field has a default, so
//! an empty file (or none) is a working configuration.

use crate::MonitorError;
use crate::rules::SurgeRule;
use crate::window::WindowSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything the monitor reads from its configuration file.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    pub kafka: KafkaConfig,
    pub processing: ProcessingConfig,
    /// Zero-shot topic labels each document is scored against.
    pub topics: Vec<TopicLabel>,
    pub rules: Vec<RuleConfig>,
}

/// Topic names, the consumer group and client settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port,...`; unset means the embedded sources (file or stdin) only.
    pub brokers: Option<String>,
    pub group_id: String,
    pub documents_topic: String,
    pub scores_topic: String,
    pub alerts_topic: String,
    pub dead_letter_topic: String,
    pub session_timeout_ms: u32,
    pub commit_interval_ms: u64,
    /// Extra librdkafka properties for both consumer and producer (security, tuning).
    pub properties: BTreeMap<String, String>,
}

/// Batching and flow control.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessingConfig {
    /// Documents (or pieces of long ones) per analysis call.
    pub batch_documents: usize,
    /// How long a partly filled batch waits for more documents.
    pub linger_ms: u64,
    /// Analysis calls in flight at once.
    pub concurrent_batches: usize,
    /// Messages received and not yet finished before partitions are paused.
    pub max_in_flight: usize,
    /// Larger messages are dead-lettered as oversized.
    pub max_message_bytes: usize,
    /// Documents longer than this are read in pieces of about this size, one piece per
    /// batch, so short documents behind them are not held up.
    pub piece_bytes: usize,
    /// Seconds in-flight documents get to finish at shutdown before the last commit.
    pub drain_seconds: u64,
    /// Seconds without documents after which windows close on processing time.
    pub idle_close_seconds: u64,
}

/// A topic label: its name and, optionally, a description its prototype is embedded with.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopicLabel {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// What a rule's windows are keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Entity,
    Topic,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Entity => "entity",
            KeyKind::Topic => "topic",
        }
    }
}

/// An alert rule as written in the file.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub key: KeyKind,
    pub window_seconds: u64,
    /// Sliding windows: a new window starts every this many seconds (default: tumbling).
    pub slide_seconds: Option<u64>,
    #[serde(default)]
    pub allowed_lateness_seconds: u64,
    pub min_documents: u64,
    pub enter_share: f64,
    pub exit_share: f64,
    #[serde(default)]
    pub min_lift: f64,
    #[serde(default = "default_alpha")]
    pub baseline_alpha: f64,
    #[serde(default = "default_prior")]
    pub baseline_prior: f64,
    #[serde(default)]
    pub cooldown_seconds: u64,
}

fn default_alpha() -> f64 {
    0.3
}

fn default_prior() -> f64 {
    0.2
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            group_id: "longview-monitor".into(),
            documents_topic: "documents".into(),
            scores_topic: "document-scores".into(),
            alerts_topic: "alerts".into(),
            dead_letter_topic: "documents-dlq".into(),
            session_timeout_ms: 10_000,
            commit_interval_ms: 1_000,
            properties: BTreeMap::new(),
        }
    }
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            batch_documents: 32,
            linger_ms: 20,
            concurrent_batches: 4,
            max_in_flight: 1_024,
            max_message_bytes: 1 << 20,
            piece_bytes: 4_096,
            drain_seconds: 10,
            idle_close_seconds: 60,
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        let topics = [
            (
                "earnings",
                "quarterly results, revenue, profit and guidance",
            ),
            ("deals", "mergers, acquisitions and investments"),
            ("legal", "lawsuits, regulators, fines and investigations"),
            (
                "operations",
                "factories, supply chains, recalls and outages",
            ),
            ("people", "executives, hiring, layoffs and strikes"),
            ("markets", "share prices, bonds, rates and trading"),
        ]
        .map(|(name, description)| TopicLabel {
            name: name.into(),
            description: description.into(),
        })
        .to_vec();
        Self {
            kafka: KafkaConfig::default(),
            processing: ProcessingConfig::default(),
            topics,
            rules: vec![entity_surge(), topic_surge()],
        }
    }
}

/// Default: a company's hourly negative share jumps well above its usual level.
fn entity_surge() -> RuleConfig {
    RuleConfig {
        name: "entity-negative-surge".into(),
        key: KeyKind::Entity,
        window_seconds: 3_600,
        slide_seconds: None,
        allowed_lateness_seconds: 300,
        min_documents: 5,
        enter_share: 0.6,
        exit_share: 0.35,
        min_lift: 0.3,
        baseline_alpha: default_alpha(),
        baseline_prior: default_prior(),
        cooldown_seconds: 3 * 3_600,
    }
}

/// Default: a topic turns negative over two hours, judged every half hour.
fn topic_surge() -> RuleConfig {
    RuleConfig {
        name: "topic-negative-surge".into(),
        key: KeyKind::Topic,
        window_seconds: 7_200,
        slide_seconds: Some(1_800),
        allowed_lateness_seconds: 300,
        min_documents: 20,
        enter_share: 0.65,
        exit_share: 0.4,
        min_lift: 0.3,
        baseline_alpha: default_alpha(),
        baseline_prior: 0.3,
        cooldown_seconds: 6 * 3_600,
    }
}

impl MonitorConfig {
    /// Parses a TOML file's text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, MonitorError> {
        let config: MonitorConfig =
            toml::from_str(text).map_err(|e| MonitorError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), MonitorError> {
        let fail = |problem: String| Err(MonitorError::Config(problem));
        let p = &self.processing;
        for (name, value) in [
            ("processing.batch_documents", p.batch_documents),
            ("processing.concurrent_batches", p.concurrent_batches),
            ("processing.max_in_flight", p.max_in_flight),
            ("processing.max_message_bytes", p.max_message_bytes),
            ("processing.piece_bytes", p.piece_bytes),
        ] {
            if value == 0 {
                return fail(format!("{name} must be at least 1"));
            }
        }
        if self.topics.is_empty() {
            return fail("topics: give at least one topic label".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for rule in &self.rules {
            if !names.insert(rule.name.as_str()) {
                return fail(format!("rules: the name {:?} is used twice", rule.name));
            }
            rule.validate().or_else(fail)?;
        }
        Ok(())
    }
}

impl RuleConfig {
    fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        let problem = if name.trim().is_empty() {
            "a rule has an empty name".to_string()
        } else if self.window_seconds == 0 {
            format!("rule {name}: window_seconds must be at least 1")
        } else if self
            .slide_seconds
            .is_some_and(|s| s == 0 || s > self.window_seconds)
        {
            format!("rule {name}: slide_seconds must be between 1 and window_seconds")
        } else if !(0.0..=1.0).contains(&self.exit_share)
            || !(0.0..=1.0).contains(&self.enter_share)
            || self.exit_share >= self.enter_share
        {
            format!("rule {name}: need 0 <= exit_share < enter_share <= 1 (hysteresis)")
        } else if !(self.baseline_alpha > 0.0 && self.baseline_alpha <= 1.0) {
            format!("rule {name}: baseline_alpha must be in (0, 1]")
        } else {
            return Ok(());
        };
        Err(problem)
    }

    pub fn window_spec(&self) -> WindowSpec {
        let size_ms = self.window_seconds as i64 * 1_000;
        WindowSpec {
            size_ms,
            slide_ms: self.slide_seconds.map_or(size_ms, |s| s as i64 * 1_000),
            allowed_lateness_ms: self.allowed_lateness_seconds as i64 * 1_000,
        }
    }

    pub fn surge_rule(&self) -> SurgeRule {
        SurgeRule {
            min_documents: self.min_documents,
            enter_share: self.enter_share,
            exit_share: self.exit_share,
            min_lift: self.min_lift,
            baseline_alpha: self.baseline_alpha,
            baseline_prior: self.baseline_prior,
            cooldown_ms: self.cooldown_seconds as i64 * 1_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default() {
        assert_eq!(
            MonitorConfig::from_toml("").unwrap(),
            MonitorConfig::default()
        );
        MonitorConfig::default().validate().unwrap();
    }

    #[test]
    fn rules_and_settings_are_read_from_toml() {
        let config = MonitorConfig::from_toml(
            r#"
            [kafka]
            brokers = "127.0.0.1:9092"
            properties = { "security.protocol" = "plaintext" }
            [processing]
            batch_documents = 8
            [[rules]]
            name = "fast"
            key = "entity"
            window_seconds = 600
            slide_seconds = 60
            min_documents = 3
            enter_share = 0.5
            exit_share = 0.2
            "#,
        )
        .unwrap();
        assert_eq!(config.processing.batch_documents, 8);
        assert_eq!(config.processing.linger_ms, 20, "defaults fill the rest");
        assert_eq!(config.rules.len(), 1);
        let spec = config.rules[0].window_spec();
        assert_eq!((spec.size_ms, spec.slide_ms), (600_000, 60_000));
        assert_eq!(config.rules[0].baseline_alpha, 0.3);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| MonitorConfig::from_toml(text).unwrap_err().to_string();
        assert!(err("[procesing]\nbatch_documents = 1").contains("unknown field"));
        assert!(err("[processing]\nbatch_documents = 0").contains("batch_documents"));
        let rule = |extra: &str| {
            format!(
                "[[rules]]\nname = \"r\"\nkey = \"topic\"\nwindow_seconds = 60\nmin_documents = 1\n{extra}"
            )
        };
        assert!(err(&rule("enter_share = 0.3\nexit_share = 0.5")).contains("hysteresis"));
        assert!(
            err(&rule(
                "enter_share = 0.6\nexit_share = 0.5\nslide_seconds = 120"
            ))
            .contains("slide_seconds")
        );
        let twice = format!(
            "{}\n{}",
            rule("enter_share = 0.6\nexit_share = 0.5"),
            rule("enter_share = 0.6\nexit_share = 0.5")
        );
        assert!(err(&twice).contains("used twice"));
    }
}
