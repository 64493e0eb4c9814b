//! The gRPC handler: convert, validate, embed, convert back.

use crate::EmbedError;
use longview_core::{TokenLimit, Usage};
use longview_proto::v1::{self as pb, embed_server::Embed};
use longview_worker::{EmbeddedText, Worker, wire};
use tonic::{Request, Response, Status};

/// Request limits of the Embed service.
#[derive(Clone, Copy, Debug)]
pub struct EmbedLimits {
    pub max_texts: usize,
}

impl Default for EmbedLimits {
    fn default() -> Self {
        Self { max_texts: 256 }
    }
}

pub struct EmbedService {
    worker: Worker,
    limits: EmbedLimits,
}

impl EmbedService {
    pub fn new(worker: Worker, limits: EmbedLimits) -> Self {
        Self { worker, limits }
    }

    pub fn into_server(self) -> pb::embed_server::EmbedServer<Self> {
        pb::embed_server::EmbedServer::new(self)
    }

    async fn embed(&self, request: pb::EmbedRequest) -> Result<pb::EmbedResponse, EmbedError> {
        let count = request.texts.len();
        if count == 0 {
            return Err(EmbedError::NoTexts);
        }
        if count > self.limits.max_texts {
            return Err(EmbedError::TooManyTexts {
                count,
                limit: self.limits.max_texts,
            });
        }
        let info = self.worker.loaded()?.info.clone();
        let limit = token_limit(
            &request,
            info.trained_seq_len,
            info.max_positions,
            info.special_tokens,
        )?;
        let embedded = self.worker.embed_texts(request.texts, limit).await?;
        Ok(response(embedded, wire::model(&info), info.dimensions))
    }
}

/// Content tokens allowed per text: the model's trained length by default, lowered by the
/// request's max_tokens, never above the model's positions.
fn token_limit(
    request: &pb::EmbedRequest,
    trained: usize,
    positions: usize,
    special: usize,
) -> Result<TokenLimit, EmbedError> {
    let requested = request.max_tokens as usize;
    if requested > positions {
        return Err(EmbedError::MaxTokensTooLarge {
            requested,
            limit: positions,
        });
    }
    let with_special = if requested == 0 { trained } else { requested };
    let truncate = request.truncation() != pb::Truncation::None;
    Ok(TokenLimit {
        max_tokens: with_special.saturating_sub(special).max(1),
        truncate,
    })
}

fn response(
    embedded: Vec<EmbeddedText>,
    model: pb::ModelInfo,
    dimensions: usize,
) -> pb::EmbedResponse {
    let usage: Usage = embedded.iter().map(|e| e.usage).sum();
    let embeddings = embedded
        .into_iter()
        .map(|e| pb::Embedding {
            values: e.vector,
            usage: Some(wire::usage(e.usage)),
        })
        .collect();
    pb::EmbedResponse {
        embeddings,
        model: Some(model),
        usage: Some(wire::usage(usage)),
        dimensions: dimensions as u32,
    }
}

#[tonic::async_trait]
impl Embed for EmbedService {
    #[tracing::instrument(name = "embed", skip_all, fields(texts = request.get_ref().texts.len() as i64))]
    async fn embed(
        &self,
        request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        let response = EmbedService::embed(self, request.into_inner()).await?;
        Ok(Response::new(response))
    }
}
