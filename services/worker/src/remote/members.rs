//! The worker processes behind the configured endpoints. A name that resolves to several
//! addresses (a Kubernetes headless Service, say) stands for all of them, and names are
//! resolved again every few seconds, so workers that scale out, move or go away are
//! followed without a restart.

use super::RemoteConfig;
use crate::WorkerError;
use longview_proto::worker::v1::worker_client::WorkerClient;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

/// One worker process.
pub(crate) struct Member {
    /// As logs show it: the configured name and, when it differs, the address.
    pub label: String,
    pub client: WorkerClient<Channel>,
}

/// An endpoint as configured.
#[derive(Debug)]
struct Target {
    configured: String,
    scheme: String,
    host: String,
    port: u16,
}

pub(crate) struct Members {
    targets: Vec<Target>,
    config: RemoteConfig,
    current: RwLock<Arc<Vec<Arc<Member>>>>,
}

impl Members {
    /// One member per configured endpoint, by name, until the first resolution.
    pub(crate) fn new(config: &RemoteConfig) -> Result<Self, WorkerError> {
        if config.endpoints.is_empty() {
            return Err(WorkerError::Unreachable(
                "no worker endpoints configured".into(),
            ));
        }
        let targets = config
            .endpoints
            .iter()
            .map(|e| target(e))
            .collect::<Result<Vec<_>, _>>()?;
        let initial = targets
            .iter()
            .map(|t| member(t.configured.clone(), &t.url(&t.host_port()), config).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            targets,
            config: config.clone(),
            current: RwLock::new(Arc::new(initial)),
        })
    }

    pub(crate) fn snapshot(&self) -> Arc<Vec<Arc<Member>>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves every name again; members whose address stays keep their connection. A
    /// name that fails to resolve keeps what it had, so a DNS hiccup drops no worker.
    pub(crate) async fn refresh(&self) {
        let old = self.snapshot();
        let by_label: HashMap<&str, &Arc<Member>> =
            old.iter().map(|m| (m.label.as_str(), m)).collect();
        let mut fresh = Vec::new();
        for target in &self.targets {
            let addresses = match resolve(target).await {
                Some(addresses) => addresses,
                None => {
                    let kept = old.iter().filter(|m| target.owns(&m.label));
                    fresh.extend(kept.cloned());
                    continue;
                }
            };
            for address in addresses {
                let label = target.label(address);
                match by_label.get(label.as_str()) {
                    Some(existing) => fresh.push(Arc::clone(existing)),
                    None => match member(label, &target.url(&address.to_string()), &self.config) {
                        Ok(member) => fresh.push(Arc::new(member)),
                        Err(err) => tracing::warn!(error = %err, "skipping a worker address"),
                    },
                }
            }
        }
        if changed(&old, &fresh) {
            let labels: Vec<&str> = fresh.iter().map(|m| m.label.as_str()).collect();
            tracing::info!(workers = ?labels, "model workers changed");
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
    }
}

impl Target {
    fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn url(&self, authority: &str) -> String {
        format!("{}://{authority}", self.scheme)
    }

    /// Whether a member came from this endpoint.
    fn owns(&self, label: &str) -> bool {
        label == self.configured
            || label
                .strip_prefix(self.configured.as_str())
                .is_some_and(|rest| rest.starts_with(" ("))
    }

    fn label(&self, address: SocketAddr) -> String {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(_) => self.configured.clone(),
            Err(_) => format!("{} ({address})", self.configured),
        }
    }
}

fn target(endpoint: &str) -> Result<Target, WorkerError> {
    let invalid = |problem: &str| {
        WorkerError::Unreachable(format!("worker endpoint {endpoint:?}: {problem}"))
    };
    let with_scheme = match endpoint.contains("://") {
        true => endpoint.to_string(),
        false => format!("http://{endpoint}"),
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|_| invalid("not host:port or a URL"))?;
    let host = uri.host().ok_or_else(|| invalid("no host"))?;
    let port = uri
        .port_u16()
        .ok_or_else(|| invalid("no port (workers listen on 50051 by default)"))?;
    Ok(Target {
        configured: endpoint.to_string(),
        scheme: uri.scheme_str().unwrap_or("http").to_string(),
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    })
}

async fn resolve(target: &Target) -> Option<Vec<SocketAddr>> {
    match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
        Ok(found) => {
            let mut addresses: Vec<SocketAddr> = found.collect();
            addresses.sort();
            addresses.dedup();
            (!addresses.is_empty()).then_some(addresses)
        }
        Err(err) => {
            tracing::warn!(worker = %target.configured, error = %err, "cannot resolve worker endpoint");
            None
        }
    }
}

fn member(label: String, url: &str, config: &RemoteConfig) -> Result<Member, WorkerError> {
    let channel = Endpoint::from_shared(url.to_string())
        .map_err(|e| WorkerError::Unreachable(format!("worker endpoint {label:?}: {e}")))?
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .tcp_nodelay(true)
        .connect_lazy();
    let client = WorkerClient::new(channel)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    Ok(Member { label, client })
}

fn changed(old: &[Arc<Member>], fresh: &[Arc<Member>]) -> bool {
    old.len() != fresh.len() || old.iter().zip(fresh).any(|(a, b)| a.label != b.label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_or_without_a_scheme() {
        let plain = target("worker.ns.svc:50051").unwrap();
        assert_eq!((plain.scheme.as_str(), plain.port), ("http", 50051));
        let ipv6 = target("http://[::1]:7000").unwrap();
        assert_eq!((ipv6.host.as_str(), ipv6.port), ("::1", 7000));
        assert!(
            target("worker")
                .unwrap_err()
                .to_string()
                .contains("no port")
        );
    }

    #[tokio::test]
    async fn a_name_stands_for_every_address_it_resolves_to() {
        let config = RemoteConfig::new(vec!["localhost:50051".into(), "127.0.0.1:7000".into()]);
        let members = Members::new(&config).unwrap();
        assert_eq!(members.snapshot().len(), 2);
        members.refresh().await;
        let labels: Vec<String> = members.snapshot().iter().map(|m| m.label.clone()).collect();
        assert!(
            labels.iter().any(|l| l.starts_with("localhost:50051 (")),
            "{labels:?}"
        );
        assert!(labels.contains(&"127.0.0.1:7000".to_string()), "{labels:?}");
        let before = members.snapshot();
        members.refresh().await;
        let after = members.snapshot();
        assert!(
            Arc::ptr_eq(&before[0], &after[0]),
            "unchanged members keep their connection"
        );
    }
}
