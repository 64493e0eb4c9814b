//! The gRPC handlers: read the tenant, validate and convert at the edge, run, convert back.

use crate::RagError;
use crate::ask::{self, Question};
use crate::generator::TextGenerator;
use crate::ingest::embed_documents;
use crate::mask::Masker;
use crate::record::Hit;
use crate::retrieve::Retriever;
use crate::validate::{self, AnswerMode, Query, RagLimits};
use longview_core::{Masking, Tenant, TokenLimit, Usage, WindowSpec};
use longview_proto::v1::{self as pb, rag_server::Rag};
use longview_worker::{Worker, wire};
use std::sync::{Arc, OnceLock};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Ask's events as the client receives them (masked for its tenant).
pub type AnswerStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::AskResponse, Status>> + Send>>;

/// Answer events buffered ahead of a slow client.
const ANSWER_BUFFER: usize = 32;

/// What the service needs once the encoder is warm: the opened stores, the window spec
/// for the model, and the generator if one is configured.
pub struct RagBackend {
    pub retriever: Retriever,
    pub spec: WindowSpec,
    pub generator: Option<Arc<dyn TextGenerator>>,
}

pub struct RagService {
    worker: Worker,
    backend: Arc<OnceLock<RagBackend>>,
    limits: RagLimits,
    masking: Arc<Masking>,
}

impl RagService {
    /// A service over `worker`; it answers UNAVAILABLE until `backend` is set.
    pub fn new(worker: Worker, backend: Arc<OnceLock<RagBackend>>, limits: RagLimits) -> Self {
        Self {
            worker,
            backend,
            limits,
            masking: Arc::default(),
        }
    }

    /// Masks what each tenant's answers show (passages, citations, answer text).
    pub fn with_masking(mut self, masking: Arc<Masking>) -> Self {
        self.masking = masking;
        self
    }

    pub fn into_server(self) -> pb::rag_server::RagServer<Self> {
        pb::rag_server::RagServer::new(self)
    }

    fn backend(&self) -> Result<&RagBackend, RagError> {
        self.backend.get().ok_or(RagError::StoreNotReady)
    }

    async fn ingest(
        &self,
        tenant: &Tenant,
        request: pb::IngestRequest,
    ) -> Result<pb::IngestResponse, RagError> {
        let documents = validate::documents(request.documents, &self.limits)?;
        let backend = self.backend()?;
        let count = documents.len();
        let (chunked, usage) = embed_documents(&self.worker, documents, backend.spec).await?;
        let chunks = chunked.iter().map(|d| d.chunks.len()).sum::<usize>();
        let replaced = backend.retriever.replace(tenant, chunked).await?;
        tracing::info!(%tenant, documents = count, chunks, replaced, "ingested");
        Ok(pb::IngestResponse {
            documents: count as u32,
            chunks: chunks as u32,
            model: Some(wire::model(&self.worker.loaded()?.info)),
            usage: Some(wire::usage(usage)),
            chunks_replaced: replaced as u32,
        })
    }

    /// Embeds the query and retrieves its passages.
    async fn retrieve(&self, tenant: &Tenant, query: &Query) -> Result<Question, RagError> {
        let backend = self.backend()?;
        let info = self.worker.loaded()?.info.clone();
        let limit = TokenLimit {
            max_tokens: info
                .trained_seq_len
                .saturating_sub(info.special_tokens)
                .max(1),
            truncate: true,
        };
        let mut embedded = self
            .worker
            .embed_texts(vec![query.text.clone()], limit)
            .await?;
        let question = embedded
            .pop()
            .ok_or(RagError::EmptyQuery { field: "query" })?;
        let hits: Vec<Hit> = backend
            .retriever
            .search(
                tenant,
                &query.text,
                question.vector.clone(),
                query.top_k,
                query.mode,
                &query.filter,
            )
            .await?;
        Ok(Question {
            text: query.text.clone(),
            vector: question.vector,
            usage: question.usage,
            hits,
        })
    }

    async fn ask(&self, tenant: Tenant, request: pb::AskRequest) -> Result<AnswerStream, RagError> {
        let backend = self.backend()?;
        let mode = validate::answer_mode(
            request.mode,
            request.max_new_tokens,
            backend.generator.is_some(),
            &self.limits,
        )?;
        let query = validate::query(
            "question",
            request.question,
            request.top_k,
            request.retrieval,
            request.filter,
            &self.limits,
        )?;
        let mut question = self.retrieve(&tenant, &query).await?;
        let masker = Masker::new(self.masking.clone(), tenant.clone());
        if matches!(mode, AnswerMode::Generative { .. }) {
            question.hits = masker.hits(&question.hits);
        }
        let (events, receiver) = tokio::sync::mpsc::channel(ANSWER_BUFFER);
        let worker = self.worker.clone();
        let generator = backend.generator.clone();
        let encoder = wire::model(&worker.loaded()?.info);
        let span = tracing::info_span!("answer", %tenant, passages = question.hits.len());
        let answer = async move {
            let answered = match (mode, generator) {
                (AnswerMode::Generative { max_new_tokens }, Some(generator)) => {
                    ask::generative(generator, question, max_new_tokens, &events).await
                }
                _ => ask::extractive(&worker, question, encoder, &events).await,
            };
            if let Err(err) = answered {
                let _ = events.send(Err(Status::from(err))).await;
            }
        };
        tokio::spawn(tracing::Instrument::instrument(answer, span));
        let masked =
            ReceiverStream::new(receiver).map(move |event| event.map(|e| masker.answer(e)));
        Ok(Box::pin(masked))
    }
}

fn tenant_of<T>(request: &Request<T>) -> Tenant {
    request
        .extensions()
        .get::<Tenant>()
        .cloned()
        .unwrap_or_default()
}

#[tonic::async_trait]
impl Rag for RagService {
    #[tracing::instrument(name = "rag.ingest", skip_all, fields(documents = request.get_ref().documents.len()))]
    async fn ingest(
        &self,
        request: Request<pb::IngestRequest>,
    ) -> Result<Response<pb::IngestResponse>, Status> {
        let tenant = tenant_of(&request);
        let response = RagService::ingest(self, &tenant, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(name = "rag.ingest_stream", skip_all)]
    async fn ingest_stream(
        &self,
        request: Request<Streaming<pb::IngestRequest>>,
    ) -> Result<Response<pb::IngestResponse>, Status> {
        let tenant = tenant_of(&request);
        let mut stream = request.into_inner();
        let mut total = pb::IngestResponse::default();
        let mut usage = Usage::default();
        while let Some(message) = stream.next().await {
            let message = message.map_err(RagError::Stream)?;
            let part = RagService::ingest(self, &tenant, message).await?;
            total.documents += part.documents;
            total.chunks += part.chunks;
            total.chunks_replaced += part.chunks_replaced;
            let part_usage = part.usage.unwrap_or_default();
            usage = usage + Usage::new(part_usage.tokens_total as usize, 0);
            total.model = part.model;
        }
        if total.model.is_none() {
            return Err(RagError::NoDocuments.into());
        }
        total.usage = Some(wire::usage(usage));
        Ok(Response::new(total))
    }

    #[tracing::instrument(name = "rag.delete", skip_all)]
    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let tenant = tenant_of(&request);
        let ids = validate::document_ids(request.into_inner().document_ids, &self.limits)?;
        let backend = self.backend()?;
        let deleted = backend
            .retriever
            .delete(&tenant, ids)
            .await
            .map_err(RagError::from)?;
        tracing::info!(%tenant, chunks = deleted, "deleted");
        Ok(Response::new(pb::DeleteResponse {
            chunks_deleted: deleted as u32,
        }))
    }

    #[tracing::instrument(name = "rag.search", skip_all)]
    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let tenant = tenant_of(&request);
        let request = request.into_inner();
        let query = validate::query(
            "query",
            request.query,
            request.top_k,
            request.mode,
            request.filter,
            &self.limits,
        )?;
        let question = self.retrieve(&tenant, &query).await?;
        let masker = Masker::new(self.masking.clone(), tenant);
        let info = self.worker.loaded().map_err(RagError::from)?.info.clone();
        Ok(Response::new(pb::SearchResponse {
            passages: question
                .hits
                .iter()
                .map(|hit| masker.passage(ask::passage(hit)))
                .collect(),
            model: Some(wire::model(&info)),
            usage: Some(wire::usage(question.usage)),
        }))
    }

    type AskStream = AnswerStream;

    #[tracing::instrument(name = "rag.ask", skip_all)]
    async fn ask(
        &self,
        request: Request<pb::AskRequest>,
    ) -> Result<Response<Self::AskStream>, Status> {
        let tenant = tenant_of(&request);
        let stream = RagService::ask(self, tenant, request.into_inner()).await?;
        Ok(Response::new(stream))
    }
}
