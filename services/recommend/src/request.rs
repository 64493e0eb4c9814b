//! The edge: requests checked against the limits and turned into domain values, naming
//! the offending item in every refusal.

use crate::RecommendError;
use crate::score::COMPONENTS;
use crate::store::{StoredHistoryItem, StoredItem};
use longview_proto::v1 as pb;
use std::collections::{BTreeMap, HashMap};

/// Request limits of the Recommend service.
#[derive(Clone, Copy, Debug)]
pub struct RecommendLimits {
    pub max_candidates: usize,
    pub max_history: usize,
    /// Items per PutItems or DeleteItems request.
    pub max_items: usize,
    pub max_text_bytes: usize,
    pub max_id_bytes: usize,
    pub max_features: usize,
}

impl Default for RecommendLimits {
    fn default() -> Self {
        Self {
            max_candidates: 10_000,
            max_history: 1_000,
            max_items: 10_000,
            max_text_bytes: 8 << 10,
            max_id_bytes: 256,
            max_features: 32,
        }
    }
}

/// Whose taste a request scores against.
#[derive(Clone, Debug, PartialEq)]
pub enum User {
    History(Vec<StoredHistoryItem>),
    Profile(String),
}

/// One candidate, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateSpec {
    pub item_id: String,
    pub text: Option<String>,
    pub features: BTreeMap<String, f64>,
    pub popularity: Option<u64>,
    pub timestamp: i64,
}

/// A Score request, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreInput {
    pub user: User,
    pub candidates: Vec<CandidateSpec>,
    pub weights: BTreeMap<String, f64>,
    pub now: Option<i64>,
    pub top_k: usize,
    pub recency_half_life_days: Option<f64>,
    pub history_half_life_days: Option<f64>,
}

pub fn score_input(
    request: pb::ScoreRequest,
    limits: &RecommendLimits,
) -> Result<ScoreInput, RecommendError> {
    let user = match request.user {
        Some(pb::score_request::User::ProfileId(id)) if id.is_empty() => {
            return Err(RecommendError::MissingProfileId);
        }
        Some(pb::score_request::User::ProfileId(id)) => {
            check_id(&id, || "profile_id".into(), limits)?;
            User::Profile(id)
        }
        Some(pb::score_request::User::History(h)) => User::History(history(h.items, limits)?),
        None => User::History(Vec::new()),
    };
    let candidates = candidates(request.candidates, limits)?;
    check_weights(&request.weights, &candidates)?;
    Ok(ScoreInput {
        user,
        candidates,
        weights: request.weights.into_iter().collect(),
        now: (request.now != 0).then_some(request.now),
        top_k: request.top_k as usize,
        recency_half_life_days: half_life(
            request.recency_half_life_days,
            "recency_half_life_days",
        )?,
        history_half_life_days: half_life(
            request.history_half_life_days,
            "history_half_life_days",
        )?,
    })
}

/// A history as sent in a Score or PutProfile request.
pub fn history(
    items: Vec<pb::HistoryItem>,
    limits: &RecommendLimits,
) -> Result<Vec<StoredHistoryItem>, RecommendError> {
    too_many("history.items", items.len(), limits.max_history)?;
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let field = || format!("history.items[{index}]");
            check_id(&item.item_id, field, limits)?;
            let text = optional_text(item.text, field, limits)?;
            if item.item_id.is_empty() && text.is_none() {
                return Err(RecommendError::NoItem { field: field() });
            }
            let weight = item.weight.unwrap_or(1.0);
            if !weight.is_finite() || weight < 0.0 {
                return Err(RecommendError::BadNumber {
                    field: format!("{}.weight", field()),
                    value: f64::from(weight),
                    rule: " and at least 0",
                });
            }
            Ok(StoredHistoryItem {
                item_id: item.item_id,
                text,
                weight,
                timestamp: item.timestamp,
            })
        })
        .collect()
}

fn candidates(
    candidates: Vec<pb::Candidate>,
    limits: &RecommendLimits,
) -> Result<Vec<CandidateSpec>, RecommendError> {
    if candidates.is_empty() {
        return Err(RecommendError::Empty {
            field: "candidates",
        });
    }
    too_many("candidates", candidates.len(), limits.max_candidates)?;
    unique_ids(
        candidates.iter().map(|c| c.item_id.as_str()),
        "candidates",
        "candidate",
    )?;
    candidates
        .into_iter()
        .enumerate()
        .map(|(index, c)| {
            let field = || format!("candidates[{index}]");
            check_id(&c.item_id, field, limits)?;
            check_features(
                &c.features,
                || format!("{} (item {:?})", field(), c.item_id),
                limits,
            )?;
            Ok(CandidateSpec {
                text: optional_text(c.text, field, limits)?,
                item_id: c.item_id,
                features: c.features.into_iter().collect(),
                popularity: c.popularity,
                timestamp: c.timestamp,
            })
        })
        .collect()
}

fn check_features(
    features: &HashMap<String, f64>,
    named: impl Fn() -> String,
    limits: &RecommendLimits,
) -> Result<(), RecommendError> {
    if features.len() > limits.max_features {
        return Err(RecommendError::TooMany {
            field: format!("features of {}", named()),
            count: features.len(),
            limit: limits.max_features,
        });
    }
    for (name, &value) in features {
        if COMPONENTS.contains(&name.as_str()) {
            return Err(RecommendError::ReservedFeature {
                field: format!("a feature of {}", named()),
                name: name.clone(),
            });
        }
        if !value.is_finite() {
            return Err(RecommendError::BadNumber {
                field: format!("feature {name:?} of {}", named()),
                value,
                rule: "",
            });
        }
    }
    Ok(())
}

/// Items for PutItems.
pub fn items(
    items: Vec<pb::Item>,
    limits: &RecommendLimits,
) -> Result<Vec<(String, StoredItem)>, RecommendError> {
    if items.is_empty() {
        return Err(RecommendError::Empty { field: "items" });
    }
    too_many("items", items.len(), limits.max_items)?;
    unique_ids(items.iter().map(|i| i.item_id.as_str()), "items", "item")?;
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let field = || format!("items[{index}]");
            check_id(&item.item_id, field, limits)?;
            let text = optional_text(item.text, field, limits)?;
            let text = text.ok_or_else(|| RecommendError::BlankText {
                field: format!("{}.text", field()),
            })?;
            let stored = StoredItem {
                text,
                popularity: item.popularity,
                timestamp: item.timestamp,
            };
            Ok((item.item_id, stored))
        })
        .collect()
}

/// Ids for DeleteItems.
pub fn item_ids(ids: &[String], limits: &RecommendLimits) -> Result<(), RecommendError> {
    if ids.is_empty() {
        return Err(RecommendError::Empty { field: "item_ids" });
    }
    too_many("item_ids", ids.len(), limits.max_items)?;
    for (index, id) in ids.iter().enumerate() {
        let field = || format!("item_ids[{index}]");
        if id.is_empty() {
            return Err(RecommendError::MissingId {
                field: field(),
                what: "item",
            });
        }
        check_id(id, field, limits)?;
    }
    Ok(())
}

/// A profile id for PutProfile and DeleteProfile.
pub fn profile_id(id: &str, limits: &RecommendLimits) -> Result<(), RecommendError> {
    if id.is_empty() {
        return Err(RecommendError::MissingProfileId);
    }
    check_id(id, || "profile_id".into(), limits)
}

fn too_many(field: &str, count: usize, limit: usize) -> Result<(), RecommendError> {
    if count > limit {
        return Err(RecommendError::TooMany {
            field: field.to_string(),
            count,
            limit,
        });
    }
    Ok(())
}

/// Field names are built only for errors: a valid request of 10,000 candidates should not
/// pay for 10,000 formatted strings.
fn check_id(
    id: &str,
    field: impl FnOnce() -> String,
    limits: &RecommendLimits,
) -> Result<(), RecommendError> {
    if id.len() > limits.max_id_bytes {
        return Err(RecommendError::IdTooLong {
            field: field(),
            bytes: id.len(),
            limit: limits.max_id_bytes,
        });
    }
    Ok(())
}

/// Every id present and unique; the error names both places a repeated id appears.
fn unique_ids<'a>(
    ids: impl Iterator<Item = &'a str>,
    field: &str,
    what: &'static str,
) -> Result<(), RecommendError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, id) in ids.enumerate() {
        if id.is_empty() {
            let field = format!("{field}[{index}]");
            return Err(RecommendError::MissingId { field, what });
        }
        if let Some(first) = seen.insert(id, index) {
            return Err(RecommendError::Duplicate {
                field: format!("{field}[{index}]"),
                id: id.to_string(),
                first: format!("{field}[{first}]"),
            });
        }
    }
    Ok(())
}

/// Empty text means "not given"; text that is there must be readable and within limits.
fn optional_text(
    text: String,
    field: impl Fn() -> String,
    limits: &RecommendLimits,
) -> Result<Option<String>, RecommendError> {
    if text.is_empty() {
        return Ok(None);
    }
    let field = || format!("{}.text", field());
    if text.len() > limits.max_text_bytes {
        return Err(RecommendError::TextTooLong {
            field: field(),
            bytes: text.len(),
            limit: limits.max_text_bytes,
        });
    }
    if longview_core::text::is_blank(&text) {
        return Err(RecommendError::BlankText { field: field() });
    }
    Ok(Some(text))
}

fn check_weights(
    weights: &HashMap<String, f64>,
    candidates: &[CandidateSpec],
) -> Result<(), RecommendError> {
    for (name, &value) in weights {
        if !value.is_finite() {
            let field = format!("weights[{name:?}]");
            return Err(RecommendError::BadNumber {
                field,
                value,
                rule: "",
            });
        }
        let known = COMPONENTS.contains(&name.as_str())
            || candidates.iter().any(|c| c.features.contains_key(name));
        if !known {
            return Err(RecommendError::UnknownWeight { name: name.clone() });
        }
    }
    Ok(())
}

fn half_life(days: Option<f64>, field: &str) -> Result<Option<f64>, RecommendError> {
    match days {
        Some(value) if !(value.is_finite() && value > 0.0) => Err(RecommendError::BadNumber {
            field: field.to_string(),
            value,
            rule: " and above 0",
        }),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: &str, text: &str) -> pb::Candidate {
        pb::Candidate {
            item_id: id.into(),
            text: text.into(),
            ..Default::default()
        }
    }

    fn request(candidates: Vec<pb::Candidate>) -> pb::ScoreRequest {
        pb::ScoreRequest {
            candidates,
            ..Default::default()
        }
    }

    fn refusal(request: pb::ScoreRequest) -> String {
        let limits = RecommendLimits {
            max_candidates: 3,
            ..Default::default()
        };
        score_input(request, &limits).unwrap_err().to_string()
    }

    #[test]
    fn no_user_is_an_empty_history() {
        let input = score_input(request(vec![candidate("a", "x")]), &Default::default()).unwrap();
        assert_eq!(input.user, User::History(Vec::new()));
        assert_eq!(input.candidates[0].text.as_deref(), Some("x"));
    }

    #[test]
    fn limits_and_duplicates_are_named() {
        let four = (0..4).map(|i| candidate(&i.to_string(), "t")).collect();
        assert!(
            refusal(request(four)).contains("4 candidates in one request, over the limit of 3")
        );
        let twice = vec![candidate("a", "x"), candidate("b", ""), candidate("a", "y")];
        let message = refusal(request(twice));
        assert!(
            message.contains(r#"candidates[2] repeats item_id "a" of candidates[0]"#),
            "{message}"
        );
        assert!(refusal(request(vec![])).contains("candidates is empty"));
        assert!(
            refusal(request(vec![candidate("", "x")])).contains("candidates[0] has no item_id")
        );
        let blank = refusal(request(vec![candidate("a", " \u{200B} ")]));
        assert!(blank.contains("candidates[0].text is blank"), "{blank}");
    }

    #[test]
    fn non_finite_numbers_are_named() {
        let mut bad = candidate("moon", "x");
        bad.features.insert("clicks".into(), f64::NAN);
        let message = refusal(request(vec![candidate("a", "x"), bad]));
        assert!(
            message.contains(r#"feature "clicks" of candidates[1] (item "moon") is NaN"#),
            "{message}"
        );

        let mut weighted = request(vec![candidate("a", "x")]);
        weighted.weights.insert("content".into(), f64::INFINITY);
        assert!(refusal(weighted).contains(r#"weights["content"] is inf"#));

        let mut history = request(vec![candidate("a", "x")]);
        let item = pb::HistoryItem {
            text: "y".into(),
            weight: Some(-1.0),
            ..Default::default()
        };
        history.user = Some(pb::score_request::User::History(pb::UserHistory {
            items: vec![item],
        }));
        assert!(refusal(history).contains("history.items[0].weight is -1"));

        let mut half = request(vec![candidate("a", "x")]);
        half.recency_half_life_days = Some(0.0);
        assert!(refusal(half).contains("recency_half_life_days is 0"));
    }

    #[test]
    fn weights_must_name_something() {
        let mut with_feature = candidate("a", "x");
        with_feature.features.insert("margin".into(), 0.5);
        let mut ok = request(vec![with_feature]);
        ok.weights.insert("margin".into(), 2.0);
        ok.weights.insert("recency".into(), 0.0);
        assert!(score_input(ok, &Default::default()).is_ok());

        let mut typo = request(vec![candidate("a", "x")]);
        typo.weights.insert("populrity".into(), 1.0);
        assert!(refusal(typo).contains(r#"weights names "populrity""#));

        let mut reserved = candidate("a", "x");
        reserved.features.insert("recency".into(), 1.0);
        assert!(refusal(request(vec![reserved])).contains(r#"named "recency", a built-in"#));
    }

    #[test]
    fn put_items_need_text_and_unique_ids() {
        let item = |id: &str, text: &str| pb::Item {
            item_id: id.into(),
            text: text.into(),
            popularity: 3,
            timestamp: 5,
        };
        let limits = RecommendLimits::default();
        let ok = items(vec![item("a", "rockets")], &limits).unwrap();
        assert_eq!(ok[0].1.popularity, 3);
        let message = items(vec![item("a", "")], &limits).unwrap_err().to_string();
        assert!(message.contains("items[0].text is blank"), "{message}");
        let message = items(vec![item("a", "x"), item("a", "y")], &limits)
            .unwrap_err()
            .to_string();
        assert!(message.contains(r#"items[1] repeats item_id "a""#));
    }
}
