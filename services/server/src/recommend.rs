//! The recommend role's wiring: its flags, its configuration, and the service built from
//! them.

use crate::config::ConfigError;
use clap::Args;
use longview_recommend::score::Weights;
use longview_recommend::{
    BlendModel, RecommendLimits, RecommendService, RecommendSettings, ScoringDefaults,
};
use longview_worker::Worker;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[recommend]`: the item store, the embedding cache and the default blend.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecommendSection {
    /// Where stored items, profiles and cached item vectors are kept (one server process
    /// per directory) [default: <models root>/recommend].
    #[arg(
        id = "recommend_store_dir",
        long = "recommend-store-dir",
        env = "LONGVIEW_RECOMMEND_STORE_DIR"
    )]
    pub store_dir: Option<PathBuf>,
    /// Megabytes of item vectors kept in memory in front of the store [default: 256].
    #[arg(
        id = "recommend_cache_mb",
        long = "recommend-cache-mb",
        env = "LONGVIEW_RECOMMEND_CACHE_MB"
    )]
    pub cache_mb: Option<u64>,
    /// Candidates per Score request [default: 10000].
    #[arg(
        id = "recommend_max_candidates",
        long = "recommend-max-candidates",
        env = "LONGVIEW_RECOMMEND_MAX_CANDIDATES"
    )]
    pub max_candidates: Option<usize>,
    /// A trained blend (`longview train recommender`) to use as the defaults below; the
    /// settings that follow override it.
    #[arg(
        id = "recommend_model",
        long = "recommend-model",
        env = "LONGVIEW_RECOMMEND_MODEL"
    )]
    pub model: Option<PathBuf>,
    /// Default blend weights, e.g. "content=1,popularity=0.5,recency=0.1"; components not
    /// named keep the built-in defaults (tuned on MovieLens).
    #[arg(
        id = "recommend_weights",
        long = "recommend-weights",
        env = "LONGVIEW_RECOMMEND_WEIGHTS"
    )]
    pub weights: Option<String>,
    /// Default half-life of a candidate's recency, in days [default: 7].
    #[arg(
        id = "recommend_recency_half_life_days",
        long = "recommend-recency-half-life-days",
        env = "LONGVIEW_RECOMMEND_RECENCY_HALF_LIFE_DAYS"
    )]
    pub recency_half_life_days: Option<f64>,
    /// Default half-life of history items' weight by age, in days [default: 1].
    #[arg(
        id = "recommend_history_half_life_days",
        long = "recommend-history-half-life-days",
        env = "LONGVIEW_RECOMMEND_HISTORY_HALF_LIFE_DAYS"
    )]
    pub history_half_life_days: Option<f64>,
}

/// The recommend role's configuration, validated.
#[derive(Clone, Debug, Serialize)]
pub struct RecommendConfig {
    /// `None` keeps items, profiles and vectors in memory only.
    pub store_dir: Option<PathBuf>,
    pub cache_mb: u64,
    #[serde(skip)]
    pub limits: RecommendLimits,
    #[serde(serialize_with = "defaults_json")]
    pub defaults: ScoringDefaults,
}

impl RecommendConfig {
    /// Defaults, with the store beside `models_root`.
    pub fn new(models_root: &Path) -> Self {
        Self {
            store_dir: Some(default_store_dir(models_root)),
            cache_mb: 256,
            limits: RecommendLimits::default(),
            defaults: ScoringDefaults::default(),
        }
    }

    pub fn apply(&mut self, section: RecommendSection) -> Result<(), ConfigError> {
        if let Some(dir) = section.store_dir {
            self.store_dir = Some(dir);
        }
        if let Some(mb) = section.cache_mb {
            self.cache_mb = mb;
        }
        if let Some(max) = section.max_candidates {
            self.limits.max_candidates = max;
        }
        if let Some(path) = &section.model {
            let model = BlendModel::load(path)
                .map_err(|e| invalid("--recommend-model", format!("{}: {e}", path.display())))?;
            self.defaults = model.defaults();
        }
        if let Some(list) = &section.weights {
            self.defaults.weights = parse_weights(list, &self.defaults.weights)?;
        }
        if let Some(days) = section.recency_half_life_days {
            self.defaults.recency_half_life_days =
                positive("--recommend-recency-half-life-days", days)?;
        }
        if let Some(days) = section.history_half_life_days {
            let days = positive("--recommend-history-half-life-days", days)?;
            self.defaults.history_half_life_days = Some(days);
        }
        Ok(())
    }

    pub fn service(&self, worker: Worker) -> RecommendService {
        let settings = RecommendSettings {
            store_dir: self.store_dir.clone(),
            cache_bytes: self.cache_mb << 20,
            limits: self.limits,
            defaults: self.defaults.clone(),
        };
        RecommendService::new(worker, settings)
    }
}

/// Beside the models, as the RAG store is: `<models root>/recommend`.
pub fn default_store_dir(models_root: &Path) -> PathBuf {
    models_root.join("recommend")
}

/// "content=1,popularity=0.5" over `base`; only the built-in components may be named.
fn parse_weights(list: &str, base: &Weights) -> Result<Weights, ConfigError> {
    let mut weights = base.clone();
    for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
        let problem = || format!("{pair:?} is not name=number (content, popularity or recency)");
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| invalid("--recommend-weights", problem()))?;
        let name = name.trim();
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| invalid("--recommend-weights", problem()))?;
        if !longview_recommend::score::COMPONENTS.contains(&name) || !value.is_finite() {
            return Err(invalid("--recommend-weights", problem()));
        }
        weights.set(name, value);
    }
    Ok(weights)
}

fn positive(flag: &'static str, value: f64) -> Result<f64, ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(invalid(
            flag,
            format!("{value} must be a positive number of days"),
        ))
    }
}

fn invalid(flag: &'static str, problem: String) -> ConfigError {
    ConfigError::Invalid { flag, problem }
}

fn defaults_json<S: serde::Serializer>(
    defaults: &ScoringDefaults,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let weights: Vec<String> = defaults
        .weights
        .named()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    serializer.collect_str(&format_args!(
        "weights {} · recency half-life {} days · history half-life {}",
        weights.join(","),
        defaults.recency_half_life_days,
        defaults
            .history_half_life_days
            .map_or("none".to_string(), |d| format!("{d} days"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_flag_overrides_named_components_only() {
        let weights =
            parse_weights("popularity=2, recency=0", &Weights::new(1.0, 0.5, 0.2)).unwrap();
        assert_eq!(weights, Weights::new(1.0, 2.0, 0.0));
        for bad in ["popularity", "clicks=1", "content=NaN", "content=x"] {
            let err = parse_weights(bad, &Weights::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("--recommend-weights"), "{bad}: {err}");
        }
    }
}
