//! Conversions from domain types to the wire types every service returns.

use longview_core::{Span, Usage};
use longview_models::ModelInfo;
use longview_proto::v1 as pb;

pub fn usage(usage: Usage) -> pb::Usage {
    pb::Usage {
        tokens_total: usage.tokens_total,
        tokens_seen: usage.tokens_seen,
        tokens_dropped: usage.tokens_dropped,
        truncated: usage.truncated(),
    }
}

pub fn span(span: Span) -> pb::Span {
    pb::Span {
        start: span.start as u64,
        end: span.end as u64,
        byte_start: span.byte_start as u64,
        byte_end: span.byte_end as u64,
    }
}

pub fn model(info: &ModelInfo) -> pb::ModelInfo {
    pb::ModelInfo {
        name: info.name.clone(),
        version: info.version.clone(),
        ..Default::default()
    }
}
