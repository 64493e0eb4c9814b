//! The message contract of the `documents` topic (and of JSONL input): decoding and
//! validation, with every way a message can be unusable named, so it can be dead-lettered
//! with its reason instead of stopping the stream.

use serde::Deserialize;
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A document to score, as it arrived.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub id: String,
    pub text: String,
    pub source: Option<String>,
    /// Event time (Unix milliseconds) when the message carried `published_at`.
    pub published_at_ms: Option<i64>,
    /// Entities the producer already knows the document mentions.
    pub entities: Vec<String>,
}

/// Why a message cannot be processed: the dead-letter reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poison {
    /// A message with no value (a tombstone) or an empty one.
    EmptyMessage,
    Oversized {
        bytes: usize,
        limit: usize,
    },
    InvalidUtf8 {
        valid_up_to: usize,
    },
    BadJson(String),
    MissingId,
    MissingText,
    EmptyText,
    BadTimestamp(String),
}

impl Poison {
    /// A short, bounded name: the metric label and the `x-dead-letter-reason` header.
    pub fn reason(&self) -> &'static str {
        match self {
            Poison::EmptyMessage => "empty_message",
            Poison::Oversized { .. } => "oversized",
            Poison::InvalidUtf8 { .. } => "invalid_utf8",
            Poison::BadJson(_) => "bad_json",
            Poison::MissingId => "missing_id",
            Poison::MissingText => "missing_text",
            Poison::EmptyText => "empty_text",
            Poison::BadTimestamp(_) => "bad_timestamp",
        }
    }
}

impl fmt::Display for Poison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Poison::EmptyMessage => write!(f, "the message has no value"),
            Poison::Oversized { bytes, limit } => {
                write!(
                    f,
                    "the message has {bytes} bytes, over the limit of {limit} bytes"
                )
            }
            Poison::InvalidUtf8 { valid_up_to } => {
                write!(f, "the value is not UTF-8 (valid up to byte {valid_up_to})")
            }
            Poison::BadJson(detail) => write!(f, "the value is not a document object: {detail}"),
            Poison::MissingId => write!(f, "\"id\" is missing or empty"),
            Poison::MissingText => write!(f, "\"text\" is missing"),
            Poison::EmptyText => write!(f, "\"text\" is empty after normalisation"),
            Poison::BadTimestamp(value) => write!(
                f,
                "\"published_at\" {value:?} is neither RFC 3339 nor Unix milliseconds"
            ),
        }
    }
}

#[derive(Deserialize)]
struct Wire {
    id: Option<String>,
    text: Option<String>,
    source: Option<String>,
    published_at: Option<Timestamp>,
    #[serde(default)]
    entities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Millis(i64),
    Text(String),
}

/// Decodes one message value, refusing it with a [`Poison`] reason when unusable.
pub fn decode(value: Option<&[u8]>, max_bytes: usize) -> Result<Document, Poison> {
    let bytes = value
        .filter(|v| !v.is_empty())
        .ok_or(Poison::EmptyMessage)?;
    if bytes.len() > max_bytes {
        return Err(Poison::Oversized {
            bytes: bytes.len(),
            limit: max_bytes,
        });
    }
    let json = std::str::from_utf8(bytes).map_err(|e| Poison::InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let wire: Wire = serde_json::from_str(json).map_err(|e| Poison::BadJson(e.to_string()))?;
    let id = wire
        .id
        .filter(|id| !id.trim().is_empty())
        .ok_or(Poison::MissingId)?;
    let text = wire.text.ok_or(Poison::MissingText)?;
    if longview_core::text::is_blank(&text) {
        return Err(Poison::EmptyText);
    }
    let published_at_ms = wire.published_at.map(event_time).transpose()?;
    Ok(Document {
        id,
        text,
        source: wire.source,
        published_at_ms,
        entities: wire.entities,
    })
}

fn event_time(timestamp: Timestamp) -> Result<i64, Poison> {
    match timestamp {
        Timestamp::Millis(ms) => Ok(ms),
        Timestamp::Text(text) => OffsetDateTime::parse(&text, &Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|_| Poison::BadTimestamp(text)),
    }
}

/// Unix milliseconds as RFC 3339 (UTC), for output records.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &[u8]) -> &'static str {
        decode(Some(value), 256).unwrap_err().reason()
    }

    #[test]
    fn decodes_a_full_document() {
        let value = br#"{"id":"a1","text":"Harbrook fell.","source":"wire","published_at":"2024-03-01T09:30:00+01:00","entities":["HRBK"]}"#;
        let document = decode(Some(value), 1024).unwrap();
        assert_eq!(document.id, "a1");
        assert_eq!(document.published_at_ms, Some(1_709_281_800_000));
        assert_eq!(document.entities, vec!["HRBK".to_string()]);
        assert_eq!(rfc3339(1_709_281_800_000), "2024-03-01T08:30:00Z");
    }

    #[test]
    fn event_time_may_be_milliseconds_or_absent() {
        let value = br#"{"id":"a","text":"x","published_at":1700000000000}"#;
        assert_eq!(
            decode(Some(value), 1024).unwrap().published_at_ms,
            Some(1_700_000_000_000)
        );
        let value = br#"{"id":"a","text":"x"}"#;
        assert_eq!(decode(Some(value), 1024).unwrap().published_at_ms, None);
    }

    #[test]
    fn every_poison_has_its_reason() {
        assert_eq!(decode(None, 10).unwrap_err().reason(), "empty_message");
        assert_eq!(reason(&[b'{'; 300]), "oversized");
        assert_eq!(
            reason(b"{\"id\":\"a\",\"text\":\"\xff\xfe\"}"),
            "invalid_utf8"
        );
        assert_eq!(reason(b"not json"), "bad_json");
        assert_eq!(reason(b"[1,2]"), "bad_json");
        assert_eq!(reason(br#"{"id":"a","text":5}"#), "bad_json");
        assert_eq!(reason(br#"{"text":"x"}"#), "missing_id");
        assert_eq!(reason(br#"{"id":" ","text":"x"}"#), "missing_id");
        assert_eq!(reason(br#"{"id":"a"}"#), "missing_text");
        assert_eq!(reason(br#"{"id":"a","text":" \u200b "}"#), "empty_text");
        assert_eq!(
            reason(br#"{"id":"a","text":"x","published_at":"yesterday"}"#),
            "bad_timestamp"
        );
    }

    #[test]
    fn reasons_read_well() {
        let err = decode(Some(&[b'x'; 300]), 256).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the message has 300 bytes, over the limit of 256 bytes"
        );
    }
}
