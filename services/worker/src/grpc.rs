//! The internal worker API over gRPC: what `--target worker` serves so task roles on other
//! machines can use this process's model.

use crate::{Output, Worker, WorkerError};
use longview_core::TokenizedText;
use longview_proto::worker::v1::{self as pb, worker_server};
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};

/// Serves one [`Worker`] over the internal API.
pub struct WorkerApi {
    worker: Worker,
    max_sequences: usize,
}

impl WorkerApi {
    pub fn new(worker: Worker) -> Self {
        Self {
            worker,
            max_sequences: 4096,
        }
    }

    pub fn into_server(self) -> worker_server::WorkerServer<Self> {
        worker_server::WorkerServer::new(self)
    }
}

fn status(err: WorkerError) -> Status {
    match err {
        WorkerError::Input(input) => Status::invalid_argument(input.describe("sequences")),
        WorkerError::Loading
        | WorkerError::Failed(_)
        | WorkerError::Stopped
        | WorkerError::Unreachable(_) => Status::new(Code::Unavailable, err.to_string()),
        WorkerError::QueueFull { .. } | WorkerError::Busy(_) => {
            crate::error::retry_later(err.to_string())
        }
        WorkerError::Model(model) => Status::invalid_argument(model.to_string()),
        WorkerError::Rejected(message) => Status::invalid_argument(message),
        WorkerError::Remote(message) => Status::internal(message),
    }
}

fn output_from_pb(output: pb::Output) -> Output {
    match output {
        pb::Output::Native => Output::Native,
        pb::Output::Embedding => Output::Embedding,
        pb::Output::FirstState => Output::FirstState,
    }
}

fn sequence_pb(tokens: TokenizedText) -> pb::TokenSequence {
    let offsets = tokens
        .offsets
        .iter()
        .flat_map(|&(start, end)| [start as u32, end as u32])
        .collect();
    pb::TokenSequence {
        ids: tokens.ids,
        offsets,
    }
}

#[tonic::async_trait]
impl worker_server::Worker for WorkerApi {
    async fn info(
        &self,
        request: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        let loaded = self.worker.loaded().map_err(status)?;
        let tokenizer_json = match request.into_inner().include_tokenizer {
            true => loaded.tokenizer.json().to_vec(),
            false => Vec::new(),
        };
        let info = loaded.info.clone();
        Ok(Response::new(pb::InfoResponse {
            model_name: info.name,
            model_version: info.version,
            dimensions: info.dimensions as u32,
            max_positions: info.max_positions as u32,
            special_tokens: info.special_tokens as u32,
            device: info.device,
            trained_seq_len: info.trained_seq_len as u32,
            dtype: info.dtype,
            backend: info.backend.to_string(),
            labels: info.labels.unwrap_or_default(),
            tokenizer_json,
        }))
    }

    async fn tokenize(
        &self,
        request: Request<pb::TokenizeRequest>,
    ) -> Result<Response<pb::TokenizeResponse>, Status> {
        let texts = Arc::new(request.into_inner().texts);
        let tokenized = self.worker.tokenize(texts).await.map_err(status)?;
        Ok(Response::new(pb::TokenizeResponse {
            sequences: tokenized.into_iter().map(sequence_pb).collect(),
        }))
    }

    async fn encode(
        &self,
        request: Request<pb::EncodeRequest>,
    ) -> Result<Response<pb::EncodeResponse>, Status> {
        let request = request.into_inner();
        let output = output_from_pb(request.output());
        let sequences: Vec<Vec<u32>> = request.sequences.into_iter().map(|s| s.ids).collect();
        if sequences.len() > self.max_sequences {
            let message = format!(
                "{} sequences, over the limit of {}",
                sequences.len(),
                self.max_sequences
            );
            return Err(Status::invalid_argument(message));
        }
        let vectors = self
            .worker
            .encode_as(sequences, output)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::EncodeResponse {
            vectors: vectors
                .into_iter()
                .map(|values| pb::Vector { values })
                .collect(),
        }))
    }
}
