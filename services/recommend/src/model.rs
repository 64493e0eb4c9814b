//! A trained blend: weights and half-lives learnt from interaction data by `longview train
//! recommender`, saved as JSON, loaded by a server as its defaults.

use crate::ranking::ScoringDefaults;
use crate::score::{COMPONENTS, Weights};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlendModel {
    /// Weight per built-in component.
    pub weights: BTreeMap<String, f64>,
    pub recency_half_life_days: f64,
    pub history_half_life_days: Option<f64>,
    /// What it was trained on, for people reading the file.
    pub trained_on: String,
    /// The encoder whose vectors the content weight was learnt with.
    pub encoder: String,
}

impl BlendModel {
    pub fn load(path: &Path) -> Result<Self, String> {
        let json = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let model: Self = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        model.check()?;
        Ok(model)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json + "\n")
    }

    fn check(&self) -> Result<(), String> {
        for (name, value) in &self.weights {
            if !COMPONENTS.contains(&name.as_str()) || !value.is_finite() {
                return Err(format!(
                    "weight {name:?} = {value} is not a finite built-in component"
                ));
            }
        }
        let positive = |d: f64| d.is_finite() && d > 0.0;
        if !positive(self.recency_half_life_days)
            || !self.history_half_life_days.is_none_or(positive)
        {
            return Err("half-lives must be positive numbers of days".into());
        }
        Ok(())
    }

    /// The server defaults this model stands for; components it does not name weigh 0.
    pub fn defaults(&self) -> ScoringDefaults {
        let mut weights = Weights::new(0.0, 0.0, 0.0);
        for (name, &value) in &self.weights {
            weights.set(name, value);
        }
        ScoringDefaults {
            weights,
            recency_half_life_days: self.recency_half_life_days,
            history_half_life_days: self.history_half_life_days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_models_load_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blend.json");
        let model = BlendModel {
            weights: [("content".into(), 2.0), ("recency".into(), 0.5)].into(),
            recency_half_life_days: 7.0,
            history_half_life_days: Some(1.0),
            trained_on: "test".into(),
            encoder: "m".into(),
        };
        model.save(&path).unwrap();
        let loaded = BlendModel::load(&path).unwrap();
        assert_eq!(loaded.defaults().weights, Weights::new(2.0, 0.0, 0.5));
        let bad = BlendModel {
            weights: [("clicks".into(), 1.0)].into(),
            ..model
        };
        bad.save(&path).unwrap();
        assert!(BlendModel::load(&path).unwrap_err().contains("clicks"));
    }
}
