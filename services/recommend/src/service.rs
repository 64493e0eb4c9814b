//! The gRPC handlers: the tenant from the request, checks at the edge, then the store,
//! the embedder and the ranking.

use crate::RecommendError;
use crate::cache::EmbeddingCache;
use crate::embedder::{Embedder, blocking};
use crate::items::ItemCache;
use crate::ranking::{self, ScoringDefaults};
use crate::request::{self, RecommendLimits};
use crate::store::{StoreHandle, StoredProfile};
use longview_core::Tenant;
use longview_proto::v1::{self as pb, recommend_server::Recommend};
use longview_worker::{Worker, wire};
use std::path::PathBuf;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// How the service is set up.
#[derive(Clone, Debug)]
pub struct RecommendSettings {
    /// Where items, profiles and cached vectors are kept; `None` keeps them in memory.
    pub store_dir: Option<PathBuf>,
    /// Bytes of vectors the in-memory cache holds.
    pub cache_bytes: u64,
    pub limits: RecommendLimits,
    pub defaults: ScoringDefaults,
}

impl Default for RecommendSettings {
    fn default() -> Self {
        Self {
            store_dir: None,
            cache_bytes: 256 << 20,
            limits: RecommendLimits::default(),
            defaults: ScoringDefaults::default(),
        }
    }
}

pub struct RecommendService {
    embedder: Embedder,
    items: Arc<ItemCache>,
    store: Arc<StoreHandle>,
    limits: RecommendLimits,
    defaults: ScoringDefaults,
}

impl RecommendService {
    pub fn new(worker: Worker, settings: RecommendSettings) -> Self {
        crate::cache::describe_metrics();
        let cache = Arc::new(EmbeddingCache::new(settings.cache_bytes));
        Self {
            embedder: Embedder::new(worker, cache),
            // Item texts are small beside their vectors: a quarter of the budget holds them.
            items: Arc::new(ItemCache::new(settings.cache_bytes / 4)),
            store: Arc::new(StoreHandle::new(settings.store_dir)),
            limits: settings.limits,
            defaults: settings.defaults,
        }
    }

    pub fn into_server(self) -> pb::recommend_server::RecommendServer<Self> {
        let per_item = self.limits.max_text_bytes + self.limits.max_id_bytes + 64;
        let limit = self.limits.max_candidates.max(self.limits.max_items) * per_item + (1 << 20);
        pb::recommend_server::RecommendServer::new(self).max_decoding_message_size(limit)
    }

    async fn store(&self) -> Result<Arc<crate::store::Store>, RecommendError> {
        let handle = self.store.clone();
        blocking(move || Ok(handle.get()?)).await
    }

    async fn score(
        &self,
        tenant: Tenant,
        request: pb::ScoreRequest,
    ) -> Result<pb::ScoreResponse, RecommendError> {
        let input = request::score_input(request, &self.limits)?;
        let store = self.store().await?;
        let items = self.items.clone();
        ranking::score(&self.embedder, items, store, &tenant, input, &self.defaults).await
    }

    async fn put_items(
        &self,
        tenant: Tenant,
        request: pb::PutItemsRequest,
    ) -> Result<pb::PutItemsResponse, RecommendError> {
        let items = request::items(request.items, &self.limits)?;
        let store = self.store().await?;
        let texts = items.iter().map(|(_, item)| item.text.clone()).collect();
        let embedded = self.embedder.vectors(store.clone(), &tenant, texts).await?;
        let stored = items.len() as u32;
        let cache = self.items.clone();
        blocking(move || Ok(cache.put(&store, tenant.as_str(), items)?)).await?;
        Ok(pb::PutItemsResponse {
            stored,
            model: Some(wire::model(&self.embedder.worker().loaded()?.info)),
            usage: Some(wire::usage(embedded.usage)),
            cache: Some(pb::EmbeddingCacheUsage {
                memory_hits: embedded.cache.memory_hits as u32,
                disk_hits: embedded.cache.disk_hits as u32,
                misses: embedded.cache.misses as u32,
            }),
        })
    }

    async fn delete_items(
        &self,
        tenant: Tenant,
        request: pb::DeleteItemsRequest,
    ) -> Result<pb::DeleteItemsResponse, RecommendError> {
        request::item_ids(&request.item_ids, &self.limits)?;
        let (store, cache) = (self.store().await?, self.items.clone());
        let deleted = blocking(move || {
            let ids: Vec<&str> = request.item_ids.iter().map(String::as_str).collect();
            Ok(cache.delete(&store, tenant.as_str(), &ids)?)
        })
        .await?;
        Ok(pb::DeleteItemsResponse {
            deleted: deleted as u32,
        })
    }

    /// Stores a history; items it names by id must be stored already.
    async fn put_profile(
        &self,
        tenant: Tenant,
        request: pb::PutProfileRequest,
    ) -> Result<pb::PutProfileResponse, RecommendError> {
        request::profile_id(&request.profile_id, &self.limits)?;
        let items = request.history.map(|h| h.items).unwrap_or_default();
        let history = request::history(items, &self.limits)?;
        let (store, cache) = (self.store().await?, self.items.clone());
        let count = history.len() as u32;
        blocking(move || {
            let by_id: Vec<usize> = (0..history.len())
                .filter(|&i| history[i].text.is_none())
                .collect();
            let ids: Vec<&str> = by_id.iter().map(|&i| history[i].item_id.as_str()).collect();
            let stored = cache.get(&store, tenant.as_str(), &ids)?;
            if let Some((&i, _)) = by_id.iter().zip(&stored).find(|(_, s)| s.is_none()) {
                return Err(RecommendError::UnknownItem {
                    field: format!("history.items[{i}]"),
                    id: history[i].item_id.clone(),
                });
            }
            let profile = StoredProfile { history };
            Ok(store.put_profile(tenant.as_str(), &request.profile_id, &profile)?)
        })
        .await?;
        Ok(pb::PutProfileResponse { items: count })
    }

    async fn delete_profile(
        &self,
        tenant: Tenant,
        request: pb::DeleteProfileRequest,
    ) -> Result<pb::DeleteProfileResponse, RecommendError> {
        request::profile_id(&request.profile_id, &self.limits)?;
        let store = self.store().await?;
        let deleted =
            blocking(move || Ok(store.delete_profile(tenant.as_str(), &request.profile_id)?))
                .await?;
        Ok(pb::DeleteProfileResponse { deleted })
    }
}

/// Who the request acts for, as authentication decided; the default tenant without it.
fn tenant<T>(request: &Request<T>) -> Tenant {
    request
        .extensions()
        .get::<Tenant>()
        .cloned()
        .unwrap_or_default()
}

#[tonic::async_trait]
impl Recommend for RecommendService {
    #[tracing::instrument(name = "recommend", skip_all, fields(candidates = request.get_ref().candidates.len()))]
    async fn score(
        &self,
        request: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        let tenant = tenant(&request);
        Ok(Response::new(
            self.score(tenant, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(name = "put_items", skip_all, fields(items = request.get_ref().items.len()))]
    async fn put_items(
        &self,
        request: Request<pb::PutItemsRequest>,
    ) -> Result<Response<pb::PutItemsResponse>, Status> {
        let tenant = tenant(&request);
        Ok(Response::new(
            self.put_items(tenant, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(name = "delete_items", skip_all)]
    async fn delete_items(
        &self,
        request: Request<pb::DeleteItemsRequest>,
    ) -> Result<Response<pb::DeleteItemsResponse>, Status> {
        let tenant = tenant(&request);
        Ok(Response::new(
            self.delete_items(tenant, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(name = "put_profile", skip_all)]
    async fn put_profile(
        &self,
        request: Request<pb::PutProfileRequest>,
    ) -> Result<Response<pb::PutProfileResponse>, Status> {
        let tenant = tenant(&request);
        Ok(Response::new(
            self.put_profile(tenant, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(name = "delete_profile", skip_all)]
    async fn delete_profile(
        &self,
        request: Request<pb::DeleteProfileRequest>,
    ) -> Result<Response<pb::DeleteProfileResponse>, Status> {
        let tenant = tenant(&request);
        Ok(Response::new(
            self.delete_profile(tenant, request.into_inner()).await?,
        ))
    }
}
