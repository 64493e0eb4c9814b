//! A Qdrant server as the vector store, over gRPC with qdrant-client.
//!
//! Checked at start: the server answers gRPC (not its REST port), and the collection
//! holds vectors of the model's size, created when missing. Any mismatch refuses start
//! with a message that says what to change.

use crate::record::{self, ChunkRecord, DocumentChunks, Hit, MetadataFilter, keys, metadata_key};
use crate::store::{StoreError, VectorStore, gate_all};
use longview_core::Tenant;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, GetPointsBuilder, PointId, PointStruct,
    SearchPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder, point_id::PointIdOptions,
    vectors_config::Config as VectorsConfig,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use std::collections::HashMap;
use std::time::Duration;

/// Points per upsert call: keeps each gRPC message well under the server's limit.
const UPSERT_BATCH: usize = 256;
/// How long the start-up probe waits for the server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A collection on a Qdrant server.
pub struct QdrantStore {
    client: Qdrant,
    collection: String,
    dimensions: usize,
}

impl QdrantStore {
    /// Connects to `url` (Qdrant's gRPC port, 6334 by default), creating `collection`
    /// when missing and refusing one whose vector size is not `dimensions`.
    pub async fn connect(
        url: &str,
        collection: &str,
        dimensions: usize,
    ) -> Result<Self, StoreError> {
        refuse_rest_port(url).await?;
        let client = Qdrant::from_url(url)
            .timeout(Duration::from_secs(30))
            .connect_timeout(PROBE_TIMEOUT)
            .skip_compatibility_check()
            .build()
            .map_err(|e| StoreError::Config(format!("--qdrant-url {url}: {e}")))?;
        let store = Self {
            client,
            collection: collection.to_string(),
            dimensions,
        };
        store.prepare_collection(url).await?;
        tracing::info!(url, collection, dimensions, "qdrant vector store ready");
        Ok(store)
    }

    async fn prepare_collection(&self, url: &str) -> Result<(), StoreError> {
        let exists = self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(|e| unreachable_server(url, e))?;
        if !exists {
            return self.create_collection().await;
        }
        let info = self
            .client
            .collection_info(&self.collection)
            .await
            .map_err(backend)?;
        let size = info
            .result
            .and_then(|r| r.config)
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config)
            .and_then(|c| match c {
                VectorsConfig::Params(params) => Some(params.size as usize),
                VectorsConfig::ParamsMap(_) => None,
            });
        match size {
            Some(size) if size == self.dimensions => Ok(()),
            Some(size) => Err(StoreError::Config(format!(
                "Qdrant collection {:?} holds {size}-dimensional vectors but the model makes {}; \
                 choose another --qdrant-collection (or recreate this one)",
                self.collection, self.dimensions
            ))),
            None => Err(StoreError::Config(format!(
                "Qdrant collection {:?} has named vectors; Longview needs one unnamed vector of {} \
                 dimensions; choose another --qdrant-collection",
                self.collection, self.dimensions
            ))),
        }
    }

    async fn create_collection(&self) -> Result<(), StoreError> {
        let vectors = VectorParamsBuilder::new(self.dimensions as u64, Distance::Cosine);
        let create = CreateCollectionBuilder::new(&self.collection).vectors_config(vectors);
        self.client
            .create_collection(create)
            .await
            .map_err(backend)?;
        for field in [keys::TENANT, keys::DOCUMENT_ID] {
            let index =
                CreateFieldIndexCollectionBuilder::new(&self.collection, field, FieldType::Keyword)
                    .wait(true);
            self.client
                .create_field_index(index)
                .await
                .map_err(backend)?;
        }
        tracing::info!(collection = %self.collection, "created the Qdrant collection");
        Ok(())
    }

    async fn delete_document(&self, tenant: &Tenant, id: &str) -> Result<usize, StoreError> {
        let filter = document_filter(tenant, id);
        let existing = self.count_filtered(filter.clone()).await?;
        if existing > 0 {
            let delete = DeletePointsBuilder::new(&self.collection)
                .points(filter)
                .wait(true);
            self.client.delete_points(delete).await.map_err(backend)?;
        }
        Ok(existing)
    }

    async fn count_filtered(&self, filter: Filter) -> Result<usize, StoreError> {
        let request = CountPointsBuilder::new(&self.collection)
            .filter(filter)
            .exact(true);
        let response = self.client.count(request).await.map_err(backend)?;
        Ok(response.result.map_or(0, |r| r.count as usize))
    }
}

#[tonic::async_trait]
impl VectorStore for QdrantStore {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn kind(&self) -> &'static str {
        "qdrant"
    }

    async fn replace(
        &self,
        tenant: &Tenant,
        documents: Vec<DocumentChunks>,
    ) -> Result<usize, StoreError> {
        gate_all(&documents, self.dimensions)?;
        let mut removed = 0;
        for document in &documents {
            removed += self.delete_document(tenant, &document.document_id).await?;
        }
        let points: Vec<PointStruct> = documents
            .iter()
            .flat_map(|d| &d.chunks)
            .map(|c| point(tenant, &c.record, &c.vector))
            .collect::<Result<_, _>>()?;
        for batch in points.chunks(UPSERT_BATCH) {
            let upsert = UpsertPointsBuilder::new(&self.collection, batch.to_vec()).wait(true);
            self.client.upsert_points(upsert).await.map_err(backend)?;
        }
        Ok(removed)
    }

    async fn delete(
        &self,
        tenant: &Tenant,
        document_ids: Vec<String>,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for id in &document_ids {
            removed += self.delete_document(tenant, id).await?;
        }
        Ok(removed)
    }

    async fn search(
        &self,
        tenant: &Tenant,
        vector: Vec<f32>,
        limit: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<Hit>, StoreError> {
        let request = SearchPointsBuilder::new(&self.collection, vector, limit as u64)
            .filter(search_filter(tenant, filter))
            .with_payload(true);
        let response = self.client.search_points(request).await.map_err(backend)?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|p| {
                Some(Hit {
                    id: numeric(p.id?)?,
                    record: record_of(p.payload)?,
                    score: p.score,
                })
            })
            .collect())
    }

    async fn fetch(
        &self,
        tenant: &Tenant,
        ids: Vec<u64>,
    ) -> Result<Vec<(u64, ChunkRecord)>, StoreError> {
        let ids: Vec<PointId> = ids.into_iter().map(PointId::from).collect();
        let request = GetPointsBuilder::new(&self.collection, ids).with_payload(true);
        let response = self.client.get_points(request).await.map_err(backend)?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|p| {
                let owner = p.payload.get(keys::TENANT)?.as_str()?.to_string();
                (owner == tenant.as_str()).then_some(())?;
                Some((numeric(p.id?)?, record_of(p.payload)?))
            })
            .collect())
    }

    async fn count(&self, tenant: &Tenant, document_id: &str) -> Result<usize, StoreError> {
        self.count_filtered(document_filter(tenant, document_id))
            .await
    }
}

fn point(tenant: &Tenant, record: &ChunkRecord, vector: &[f32]) -> Result<PointStruct, StoreError> {
    let json = serde_json::Value::Object(record::payload(tenant, record));
    let payload = Payload::try_from(json).map_err(backend)?;
    Ok(PointStruct::new(
        record.point_id(tenant),
        vector.to_vec(),
        payload,
    ))
}

fn record_of(payload: HashMap<String, qdrant_client::qdrant::Value>) -> Option<ChunkRecord> {
    let json = payload.get(keys::RECORD)?.clone().into_json();
    serde_json::from_value(json).ok()
}

fn numeric(id: PointId) -> Option<u64> {
    match id.point_id_options? {
        PointIdOptions::Num(id) => Some(id),
        PointIdOptions::Uuid(_) => None,
    }
}

fn document_filter(tenant: &Tenant, id: &str) -> Filter {
    Filter::must([
        Condition::matches(keys::TENANT, tenant.as_str().to_string()),
        Condition::matches(keys::DOCUMENT_ID, id.to_string()),
    ])
}

fn search_filter(tenant: &Tenant, filter: &MetadataFilter) -> Filter {
    let tenant = Condition::matches(keys::TENANT, tenant.as_str().to_string());
    let metadata = filter
        .0
        .iter()
        .map(|(k, v)| Condition::matches(metadata_key(k), v.clone()));
    Filter::must(std::iter::once(tenant).chain(metadata))
}

/// Qdrant's REST port answers HTTP/1.1; its gRPC port does not. Asking once in plain
/// HTTP tells a mistyped port apart from a server that is down.
async fn refuse_rest_port(url: &str) -> Result<(), StoreError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(address) = url.strip_prefix("http://") else {
        return Ok(());
    };
    let address = address.trim_end_matches('/');
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
        let mut head = [0u8; 8];
        let read = stream.read(&mut head).await?;
        Ok::<_, std::io::Error>(head[..read].starts_with(b"HTTP/1."))
    };
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(true)) => Err(StoreError::Config(format!(
            "--qdrant-url {url} answers plain HTTP: that is Qdrant's REST port; Longview talks \
             gRPC, which Qdrant serves on port 6334 by default (e.g. http://host:6334)"
        ))),
        Ok(Err(e)) => Err(StoreError::Config(format!(
            "cannot reach Qdrant at {url}: {e}"
        ))),
        Ok(Ok(false)) | Err(_) => Ok(()),
    }
}

fn unreachable_server(url: &str, err: QdrantError) -> StoreError {
    StoreError::Config(format!(
        "cannot use Qdrant at {url} (is it the gRPC port?): {err}"
    ))
}

fn backend(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A plain HTTP/1.1 server, as Qdrant's REST port is.
    async fn http_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 256];
                let _ = socket.read(&mut request).await;
                let body = r#"{"title":"qdrant - vector search engine"}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn a_rest_port_is_named_with_the_grpc_hint() {
        let url = http_server().await;
        let err = QdrantStore::connect(&url, "c", 384)
            .await
            .err()
            .expect("refused");
        let message = err.to_string();
        assert!(message.contains("REST port"), "{message}");
        assert!(message.contains("6334"), "{message}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = QdrantStore::connect(&url, "c", 384)
            .await
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot reach Qdrant at {url}")),
            "{err}"
        );
    }
}
