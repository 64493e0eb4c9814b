//! The gRPC handlers: convert and validate at the edge, classify, convert back.

use crate::classifier::{Classification, classify};
use crate::heads::HeadRegistry;
use crate::options::{ClassifyPlan, DocumentAggregation, LabelSource, ModelLimits};
use crate::{ClassifyError, ClassifyLimits};
use longview_core::head::ClassifierHead;
use longview_core::{Masking, Tenant};
use longview_proto::v1::{self as pb, classify_server::Classify};
use longview_worker::{Worker, wire};
use std::sync::Arc;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::field::Empty;

pub struct ClassifyService {
    worker: Worker,
    limits: ClassifyLimits,
    heads: HeadRegistry,
    masking: Arc<Masking>,
}

impl ClassifyService {
    /// A service over `worker`, answering trained label sets from `heads`.
    pub fn new(worker: Worker, limits: ClassifyLimits, heads: HeadRegistry) -> Self {
        Self {
            worker,
            limits,
            heads,
            masking: Arc::default(),
        }
    }

    /// Masks evidence text per tenant (nothing is masked by default).
    pub fn with_masking(mut self, masking: Arc<Masking>) -> Self {
        self.masking = masking;
        self
    }

    pub fn into_server(self) -> pb::classify_server::ClassifyServer<Self> {
        pb::classify_server::ClassifyServer::new(self)
    }

    async fn run(
        &self,
        text: String,
        options: Option<pb::ClassifyOptions>,
        tenant: &Tenant,
    ) -> Result<pb::ClassifyResponse, ClassifyError> {
        let info = self.worker.loaded()?.info.clone();
        let model = ModelLimits {
            name: &info.name,
            version: &info.version,
            max_positions: info.max_positions,
            special_tokens: info.special_tokens,
        };
        let plan = ClassifyPlan::from_options(options, &self.limits, model, &self.heads)?;
        let classification = classify(&self.worker, text, &plan, &self.limits).await?;
        // Signed: OpenTelemetry attributes are i64, and unsigned fields would become text.
        let span = tracing::Span::current();
        span.record("tokens", classification.usage.tokens_total as i64);
        span.record("windows", classification.window_count as i64);
        span.record("labels", plan.labels.len() as i64);
        let mask = |text: &str| self.masking.apply(tenant, text).into_owned();
        Ok(response(
            classification,
            &plan,
            model_pb(&info, &plan),
            mask,
        ))
    }

    /// Concatenates a streamed document, refusing it as soon as it passes the size limit.
    async fn collect(
        &self,
        mut stream: Streaming<pb::ClassifyStreamRequest>,
    ) -> Result<(String, Option<pb::ClassifyOptions>), ClassifyError> {
        let mut text = String::new();
        let mut options = None;
        while let Some(message) = stream.next().await {
            let message = message.map_err(ClassifyError::Stream)?;
            if options.is_none() {
                options = Some(message.options.ok_or(ClassifyError::StreamWithoutOptions)?);
            }
            let bytes = text.len() + message.text_piece.len();
            if bytes > self.limits.max_document_bytes {
                return Err(ClassifyError::DocumentTooLarge {
                    bytes,
                    limit: self.limits.max_document_bytes,
                });
            }
            text.push_str(&message.text_piece);
        }
        if options.is_none() {
            return Err(ClassifyError::StreamWithoutOptions);
        }
        Ok((text, options))
    }
}

fn response(
    c: Classification,
    plan: &ClassifyPlan,
    model: pb::ModelInfo,
    mask: impl Fn(&str) -> String,
) -> pb::ClassifyResponse {
    let name = |label: usize| plan.labels[label].clone();
    let label_scores = |scores: &[f32]| -> Vec<pb::LabelScore> {
        let mut scored: Vec<_> = scores
            .iter()
            .enumerate()
            .map(|(i, &score)| pb::LabelScore {
                label: name(i),
                score,
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        scored
    };
    let evidence = c.evidence.iter().map(|e| pb::Evidence {
        span: Some(wire::span(e.span)),
        label: name(e.label),
        score: e.score,
        window_index: e.window as u32,
        text: mask(&e.text),
    });
    let windows = c.windows.iter().map(|w| pb::WindowScores {
        index: w.index as u32,
        span: Some(wire::span(w.span)),
        scores: label_scores(&w.scores),
    });
    pb::ClassifyResponse {
        scores: label_scores(&c.scores),
        predicted: c.predicted.iter().map(|&l| name(l)).collect(),
        evidence: evidence.collect(),
        windows: windows.collect(),
        window_count: c.window_count as u32,
        aggregation: aggregation_pb(plan) as i32,
        model: Some(model),
        usage: Some(wire::usage(c.usage)),
    }
}

fn aggregation_pb(plan: &ClassifyPlan) -> pb::Aggregation {
    match plan.aggregation {
        DocumentAggregation::Mean => pb::Aggregation::Mean,
        DocumentAggregation::Max => pb::Aggregation::Max,
        DocumentAggregation::Attention => pb::Aggregation::Attention,
    }
}

/// The encoder that read the windows, and the head that scored them, if any.
fn model_pb(info: &longview_worker::ModelInfo, plan: &ClassifyPlan) -> pb::ModelInfo {
    let mut model = wire::model(info);
    if let LabelSource::Head(head) = &plan.source {
        model.head = head.spec.name.clone();
        model.head_version = head.spec.version.clone();
    }
    model
}

/// Who the request acts for: set by the server's authentication, the default tenant when
/// there is none (tests calling the service directly, auth switched off).
fn tenant_of<T>(request: &Request<T>) -> Tenant {
    request
        .extensions()
        .get::<Tenant>()
        .cloned()
        .unwrap_or_default()
}

fn label_set_pb(head: &ClassifierHead) -> pb::LabelSetInfo {
    pb::LabelSetInfo {
        name: head.spec.name.clone(),
        version: head.spec.version.clone(),
        labels: head.labels().to_vec(),
        multi_label: head.spec.multi_label,
    }
}

#[tonic::async_trait]
impl Classify for ClassifyService {
    #[tracing::instrument(name = "classify", skip_all, fields(
        bytes = request.get_ref().text.len() as i64, tokens = Empty, windows = Empty, labels = Empty
    ))]
    async fn classify(
        &self,
        request: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        let tenant = tenant_of(&request);
        let request = request.into_inner();
        let response = self.run(request.text, request.options, &tenant).await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(name = "classify_stream", skip_all, fields(
        bytes = Empty, tokens = Empty, windows = Empty, labels = Empty
    ))]
    async fn classify_stream(
        &self,
        request: Request<Streaming<pb::ClassifyStreamRequest>>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        let tenant = tenant_of(&request);
        let (text, options) = self.collect(request.into_inner()).await?;
        tracing::Span::current().record("bytes", text.len() as i64);
        Ok(Response::new(self.run(text, options, &tenant).await?))
    }

    async fn list_label_sets(
        &self,
        _: Request<pb::ListLabelSetsRequest>,
    ) -> Result<Response<pb::ListLabelSetsResponse>, Status> {
        let label_sets = self
            .heads
            .list()
            .iter()
            .map(|head| label_set_pb(head))
            .collect();
        Ok(Response::new(pb::ListLabelSetsResponse { label_sets }))
    }
}
