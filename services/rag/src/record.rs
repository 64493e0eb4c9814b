//! What the stores keep per chunk, and how a chunk is named and filtered.

use longview_core::{Span, Tenant};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Metadata of a document, copied onto each of its chunks.
pub type Metadata = BTreeMap<String, String>;

/// One chunk of a stored document: its exact place in the document's text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub document_id: String,
    /// Position of the chunk within its document, from 0.
    pub index: u32,
    /// The document's text from `span.byte_start` to `span.byte_end`.
    pub text: String,
    #[serde(with = "span_fields")]
    pub span: Span,
    pub metadata: Metadata,
}

impl ChunkRecord {
    /// The chunk's point id: the same tenant, document and position always name the same
    /// point, so re-ingesting overwrites rather than duplicates.
    pub fn point_id(&self, tenant: &Tenant) -> u64 {
        point_id(tenant, &self.document_id, self.index)
    }
}

/// A stable 64-bit id for chunk `index` of `document_id` of `tenant`.
pub fn point_id(tenant: &Tenant, document_id: &str, index: u32) -> u64 {
    let mut hasher = Sha256::new();
    // Lengths first, so ("ab", "c") and ("a", "bc") never collide.
    for part in [tenant.as_str(), document_id] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(index.to_le_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    // Qdrant's numeric ids are unsigned; keep clear of the top bit for JSON consumers.
    u64::from_le_bytes(bytes) >> 1
}

/// A chunk ready to store: its record and its checked vector.
#[derive(Clone, Debug)]
pub struct StoredChunk {
    pub record: ChunkRecord,
    pub vector: Vec<f32>,
}

/// Every chunk of one document, replacing whatever the document had before.
#[derive(Clone, Debug)]
pub struct DocumentChunks {
    pub document_id: String,
    pub chunks: Vec<StoredChunk>,
}

/// Exact-match conditions on metadata; a chunk passes when every key matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataFilter(pub BTreeMap<String, String>);

impl MetadataFilter {
    pub fn matches(&self, metadata: &Metadata) -> bool {
        self.0.iter().all(|(k, v)| metadata.get(k) == Some(v))
    }
}

/// A chunk found by a search, with that search's score.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub record: ChunkRecord,
    pub score: f32,
}

/// Payload keys, shared by every store so data moves between them unchanged.
pub mod keys {
    pub const TENANT: &str = "tenant";
    pub const DOCUMENT_ID: &str = "document_id";
    pub const RECORD: &str = "chunk";
    /// Metadata is stored under this object so user keys never clash with ours.
    pub const METADATA: &str = "metadata";
}

/// The payload a store keeps for a chunk: tenant and document id at the top for filters,
/// metadata under its own key for filters, and the whole record for reading back.
pub fn payload(
    tenant: &Tenant,
    record: &ChunkRecord,
) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    map.insert(keys::TENANT.into(), tenant.as_str().into());
    map.insert(keys::DOCUMENT_ID.into(), record.document_id.clone().into());
    let metadata = record
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
        .collect();
    map.insert(keys::METADATA.into(), serde_json::Value::Object(metadata));
    let record = serde_json::to_value(record).unwrap_or_default();
    map.insert(keys::RECORD.into(), record);
    map
}

/// The record inside a stored payload.
pub fn record_from_payload(
    payload: &serde_json::Map<String, serde_json::Value>,
) -> Option<ChunkRecord> {
    serde_json::from_value(payload.get(keys::RECORD)?.clone()).ok()
}

/// The payload key of a metadata field, as filters name it.
pub fn metadata_key(key: &str) -> String {
    format!("{}.{}", keys::METADATA, key)
}

mod span_fields {
    use longview_core::Span;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Fields {
        start: usize,
        end: usize,
        byte_start: usize,
        byte_end: usize,
    }

    pub fn serialize<S: Serializer>(span: &Span, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = Fields {
            start: span.start,
            end: span.end,
            byte_start: span.byte_start,
            byte_end: span.byte_end,
        };
        fields.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Span, D::Error> {
        let f = Fields::deserialize(deserializer)?;
        Ok(Span {
            start: f.start,
            end: f.end,
            byte_start: f.byte_start,
            byte_end: f.byte_end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ChunkRecord {
        ChunkRecord {
            document_id: "doc".into(),
            index: 2,
            text: "é b".into(),
            span: Span {
                start: 3,
                end: 6,
                byte_start: 4,
                byte_end: 8,
            },
            metadata: Metadata::from([("lang".into(), "fr".into())]),
        }
    }

    #[test]
    fn point_ids_separate_tenants_documents_and_positions() {
        let (a, b) = (Tenant::new("a"), Tenant::new("b"));
        assert_eq!(point_id(&a, "doc", 0), point_id(&a, "doc", 0));
        assert_ne!(point_id(&a, "doc", 0), point_id(&b, "doc", 0));
        assert_ne!(point_id(&a, "doc", 0), point_id(&a, "doc", 1));
        assert_ne!(point_id(&a, "ab", 0), point_id(&Tenant::new("ab"), "", 0));
    }

    #[test]
    fn payload_round_trips_the_record() {
        let tenant = Tenant::new("acme");
        let payload = payload(&tenant, &record());
        assert_eq!(payload[keys::TENANT], "acme");
        assert_eq!(payload[keys::METADATA]["lang"], "fr");
        assert_eq!(record_from_payload(&payload), Some(record()));
    }

    #[test]
    fn filters_need_every_key() {
        let metadata = record().metadata;
        let filter = |pairs: &[(&str, &str)]| {
            MetadataFilter(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert!(filter(&[]).matches(&metadata));
        assert!(filter(&[("lang", "fr")]).matches(&metadata));
        assert!(!filter(&[("lang", "en")]).matches(&metadata));
        assert!(!filter(&[("lang", "fr"), ("year", "2024")]).matches(&metadata));
    }
}
