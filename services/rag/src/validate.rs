//! Requests checked and converted at the edge: every refusal names the item and limit.

use crate::RagError;
use crate::record::{Metadata, MetadataFilter};
use crate::retrieve::Mode;
use longview_proto::v1 as pb;
use std::collections::HashMap;

/// Request limits of the Rag service.
#[derive(Clone, Copy, Debug)]
pub struct RagLimits {
    /// Documents per Ingest request (or per IngestStream message).
    pub max_documents: usize,
    /// Bytes of document text per request (or per stream message).
    pub max_request_bytes: usize,
    pub max_id_bytes: usize,
    pub max_metadata_entries: usize,
    pub max_top_k: usize,
    pub max_query_bytes: usize,
    pub max_new_tokens: usize,
}

impl Default for RagLimits {
    fn default() -> Self {
        Self {
            max_documents: 1_000,
            max_request_bytes: 16 << 20,
            max_id_bytes: 512,
            max_metadata_entries: 32,
            max_top_k: 100,
            max_query_bytes: 4_096,
            max_new_tokens: 1_024,
        }
    }
}

/// Passages when a request leaves top_k at 0.
pub const DEFAULT_TOP_K: usize = 5;
/// Generated tokens when a request leaves max_new_tokens at 0.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 256;

/// A document that passed every check.
#[derive(Clone, Debug)]
pub struct Document {
    pub id: String,
    pub text: String,
    pub metadata: Metadata,
}

/// Checks an ingest batch: count, size, ids (non-empty, short, unique), text, metadata.
pub fn documents(
    documents: Vec<pb::RagDocument>,
    limits: &RagLimits,
) -> Result<Vec<Document>, RagError> {
    let count = documents.len();
    if count == 0 {
        return Err(RagError::NoDocuments);
    }
    if count > limits.max_documents {
        return Err(RagError::TooManyDocuments {
            count,
            limit: limits.max_documents,
        });
    }
    let bytes: usize = documents.iter().map(|d| d.text.len()).sum();
    if bytes > limits.max_request_bytes {
        return Err(RagError::RequestTooLarge {
            bytes,
            limit: limits.max_request_bytes,
        });
    }
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (index, document) in documents.iter().enumerate() {
        check_id(index, &document.id, limits)?;
        if let Some(&first) = first_seen.get(document.id.as_str()) {
            return Err(RagError::DuplicateId {
                id: document.id.clone(),
                first,
                second: index,
            });
        }
        first_seen.insert(&document.id, index);
        if longview_core::text::is_blank(&document.text) {
            return Err(RagError::BlankText {
                index,
                id: document.id.clone(),
            });
        }
        let field = format!("documents[{index}].metadata");
        check_metadata(&field, &document.metadata, limits)?;
    }
    Ok(documents
        .into_iter()
        .map(|d| Document {
            id: d.id,
            text: d.text,
            metadata: d.metadata.into_iter().collect(),
        })
        .collect())
}

fn check_id(index: usize, id: &str, limits: &RagLimits) -> Result<(), RagError> {
    if id.is_empty() {
        return Err(RagError::EmptyId { index });
    }
    if id.len() > limits.max_id_bytes {
        return Err(RagError::IdTooLong {
            index,
            bytes: id.len(),
            limit: limits.max_id_bytes,
        });
    }
    if id.chars().any(char::is_control) {
        return Err(RagError::IdControlCharacter {
            index,
            id: id.to_string(),
        });
    }
    Ok(())
}

fn check_metadata(
    field: &str,
    metadata: &HashMap<String, String>,
    limits: &RagLimits,
) -> Result<(), RagError> {
    if metadata.len() > limits.max_metadata_entries {
        return Err(RagError::TooManyMetadata {
            field: field.to_string(),
            count: metadata.len(),
            limit: limits.max_metadata_entries,
        });
    }
    let valid = |key: &str| {
        (1..=64).contains(&key.len())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match metadata.keys().find(|k| !valid(k)) {
        Some(key) => Err(RagError::BadMetadataKey {
            field: field.to_string(),
            key: key.clone(),
        }),
        None => Ok(()),
    }
}

/// Checks Delete's ids.
pub fn document_ids(ids: Vec<String>, limits: &RagLimits) -> Result<Vec<String>, RagError> {
    if ids.is_empty() {
        return Err(RagError::NoDocumentIds);
    }
    if ids.len() > limits.max_documents {
        return Err(RagError::TooManyDocuments {
            count: ids.len(),
            limit: limits.max_documents,
        });
    }
    if let Some(index) = ids.iter().position(|id| id.is_empty()) {
        return Err(RagError::EmptyDocumentId { index });
    }
    Ok(ids)
}

/// A checked search: query text, how many, how, and on what.
#[derive(Clone, Debug)]
pub struct Query {
    pub text: String,
    pub top_k: usize,
    pub mode: Mode,
    pub filter: MetadataFilter,
}

/// Checks the parts every search and question share.
pub fn query(
    field: &'static str,
    text: String,
    top_k: u32,
    mode: i32,
    filter: HashMap<String, String>,
    limits: &RagLimits,
) -> Result<Query, RagError> {
    if longview_core::text::is_blank(&text) {
        return Err(RagError::EmptyQuery { field });
    }
    if text.len() > limits.max_query_bytes {
        return Err(RagError::QueryTooLong {
            field,
            bytes: text.len(),
            limit: limits.max_query_bytes,
        });
    }
    let top_k = match top_k as usize {
        0 => DEFAULT_TOP_K,
        k if k > limits.max_top_k => {
            return Err(RagError::TopKTooLarge {
                requested: k,
                limit: limits.max_top_k,
            });
        }
        k => k,
    };
    check_metadata("filter", &filter, limits)?;
    Ok(Query {
        text,
        top_k,
        mode: retrieval_mode(mode)?,
        filter: MetadataFilter(filter.into_iter().collect()),
    })
}

fn retrieval_mode(value: i32) -> Result<Mode, RagError> {
    match pb::RetrievalMode::try_from(value) {
        Ok(pb::RetrievalMode::Unspecified | pb::RetrievalMode::Hybrid) => Ok(Mode::Hybrid),
        Ok(pb::RetrievalMode::Dense) => Ok(Mode::Dense),
        Ok(pb::RetrievalMode::Bm25) => Ok(Mode::Bm25),
        Err(_) => Err(RagError::UnknownEnum {
            field: "mode",
            value,
        }),
    }
}

/// How a question is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerMode {
    Extractive,
    Generative { max_new_tokens: usize },
}

/// The answer mode and length a question asks for, given whether a generator exists.
pub fn answer_mode(
    mode: i32,
    max_new_tokens: u32,
    has_generator: bool,
    limits: &RagLimits,
) -> Result<AnswerMode, RagError> {
    let max_new_tokens = match max_new_tokens as usize {
        0 => DEFAULT_MAX_NEW_TOKENS,
        n if n > limits.max_new_tokens => {
            return Err(RagError::MaxNewTokensTooLarge {
                requested: n,
                limit: limits.max_new_tokens,
            });
        }
        n => n,
    };
    let generative = AnswerMode::Generative { max_new_tokens };
    match pb::AnswerMode::try_from(mode) {
        Ok(pb::AnswerMode::Extractive) => Ok(AnswerMode::Extractive),
        Ok(pb::AnswerMode::Unspecified) if !has_generator => Ok(AnswerMode::Extractive),
        Ok(pb::AnswerMode::Unspecified) => Ok(generative),
        Ok(pb::AnswerMode::Generative) if has_generator => Ok(generative),
        Ok(pb::AnswerMode::Generative) => Err(RagError::NoGenerator),
        Err(_) => Err(RagError::UnknownEnum {
            field: "mode",
            value: mode,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, text: &str) -> pb::RagDocument {
        pb::RagDocument {
            id: id.into(),
            text: text.into(),
            metadata: HashMap::new(),
        }
    }

    fn refusal(batch: Vec<pb::RagDocument>, limits: &RagLimits) -> String {
        documents(batch, limits).unwrap_err().to_string()
    }

    #[test]
    fn ingest_refusals_name_the_item() {
        let limits = RagLimits::default();
        assert!(refusal(vec![], &limits).contains("at least one"));
        assert_eq!(
            refusal(vec![doc("", "x")], &limits),
            "documents[0].id is empty"
        );
        assert!(
            refusal(vec![doc("a", " \n")], &limits).contains("documents[0] (id \"a\") has no text")
        );
        let duplicate = refusal(vec![doc("a", "x"), doc("b", "y"), doc("a", "z")], &limits);
        assert!(
            duplicate.contains("documents[2].id \"a\" repeats documents[0].id"),
            "{duplicate}"
        );
        let mut bad_key = doc("a", "x");
        bad_key.metadata.insert("a.b".into(), "v".into());
        assert!(refusal(vec![bad_key], &limits).contains("documents[0].metadata key \"a.b\""));
        let small = RagLimits {
            max_documents: 1,
            max_request_bytes: 3,
            ..limits
        };
        assert!(refusal(vec![doc("a", "x"), doc("b", "y")], &small).contains("limit of 1"));
        assert!(refusal(vec![doc("a", "long")], &small).contains("4 bytes, over the limit of 3"));
        assert_eq!(documents(vec![doc("a", "x")], &limits).unwrap()[0].id, "a");
    }

    #[test]
    fn query_defaults_and_limits() {
        let limits = RagLimits::default();
        let q = query("query", "hi".into(), 0, 0, HashMap::new(), &limits).unwrap();
        assert_eq!((q.top_k, q.mode), (DEFAULT_TOP_K, Mode::Hybrid));
        let err = query("query", "hi".into(), 101, 0, HashMap::new(), &limits).unwrap_err();
        assert_eq!(err.to_string(), "top_k 101 is over the limit of 100");
        let err = query("question", " ".into(), 1, 0, HashMap::new(), &limits).unwrap_err();
        assert_eq!(err.to_string(), "question is empty");
        assert!(query("query", "hi".into(), 1, 9, HashMap::new(), &limits).is_err());
    }

    #[test]
    fn answer_mode_follows_the_generator() {
        let limits = RagLimits::default();
        let unspecified = pb::AnswerMode::Unspecified as i32;
        let generative = pb::AnswerMode::Generative as i32;
        assert_eq!(
            answer_mode(unspecified, 0, false, &limits).unwrap(),
            AnswerMode::Extractive
        );
        assert_eq!(
            answer_mode(unspecified, 0, true, &limits).unwrap(),
            AnswerMode::Generative {
                max_new_tokens: DEFAULT_MAX_NEW_TOKENS
            }
        );
        assert!(matches!(
            answer_mode(generative, 0, false, &limits),
            Err(RagError::NoGenerator)
        ));
        assert!(answer_mode(generative, 5000, true, &limits).is_err());
    }
}
