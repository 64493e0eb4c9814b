//! Masking of what Rag returns, per tenant: passage and citation texts and the answer's
//! pieces. Spans keep pointing into the stored (unmasked) document. Generative answers
//! are written from masked passages, so the model never sees what it must not repeat.

use crate::record::Hit;
use longview_core::{Masking, Tenant};
use longview_proto::v1 as pb;
use std::sync::Arc;

/// The masking of one tenant's request.
#[derive(Clone)]
pub struct Masker {
    masking: Arc<Masking>,
    tenant: Tenant,
}

impl Masker {
    pub fn new(masking: Arc<Masking>, tenant: Tenant) -> Self {
        Self { masking, tenant }
    }

    pub fn text(&self, text: &str) -> String {
        self.masking.apply(&self.tenant, text).into_owned()
    }

    pub fn passage(&self, mut passage: pb::Passage) -> pb::Passage {
        passage.text = self.text(&passage.text);
        passage
    }

    /// Hits as a prompt may show them.
    pub fn hits(&self, hits: &[Hit]) -> Vec<Hit> {
        hits.iter()
            .cloned()
            .map(|mut hit| {
                hit.record.text = self.text(&hit.record.text);
                hit
            })
            .collect()
    }

    pub fn answer(&self, mut response: pb::AskResponse) -> pb::AskResponse {
        use pb::ask_response::Event;
        match &mut response.event {
            Some(Event::Token(piece)) => *piece = self.text(piece),
            Some(Event::Done(done)) => {
                for passage in &mut done.passages {
                    passage.text = self.text(&passage.text);
                }
                for citation in &mut done.citations {
                    citation.text = self.text(&citation.text);
                }
            }
            None => {}
        }
        response
    }
}
