//! API keys per tenant, role permissions and per-tenant quotas, as one gate of the tower
//! stack. A caller sends `authorization: Bearer <key>`; the key names its tenant, which
//! goes into the request's extensions as a [`Tenant`] for services to partition by.
//!
//! The keys file (TOML; mount it from a Kubernetes Secret) holds the keys, or only their
//! SHA-256, so the file itself need not be a secret:
//!
//! ```toml
//! [[keys]]
//! tenant = "acme"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! roles = ["classify", "embed"]   # omitted: every role
//!
//! [[keys]]
//! tenant = "globex"
//! key = "a-long-random-string"
//!
//! [tenants.acme]
//! requests_per_second = 50         # omitted: auth.requests_per_second
//! burst = 100
//! ```

use crate::stack::{Access, Gate, route_of};
use figment::providers::{Format, Toml};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use http::Request;
use longview_core::Tenant;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::path::PathBuf;
use thiserror::Error;
use tonic::Status;
use tonic::body::Body;

/// The `[auth]` section, resolved.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuthConfig {
    /// The keys file; `None` switches authentication off (every call acts for the
    /// default tenant).
    pub api_keys_file: Option<PathBuf>,
    /// Quota for tenants without their own; 0 means unlimited.
    pub requests_per_second: u32,
    /// Requests a tenant may make at once above its rate; 0 means one second's worth.
    pub burst: u32,
}

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("auth.api_keys_file {path}: {problem}")]
    File { path: PathBuf, problem: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
    #[serde(default)]
    tenants: BTreeMap<String, TenantQuota>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    tenant: String,
    key: Option<String>,
    sha256: Option<String>,
    roles: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantQuota {
    requests_per_second: Option<u32>,
    burst: Option<u32>,
}

/// What one key grants.
#[derive(Debug)]
struct Grant {
    tenant: Tenant,
    /// `None`: every role.
    roles: Option<Vec<String>>,
}

/// The authentication gate. Built once at start; cheap to share.
#[derive(Debug, Default)]
pub struct Auth {
    /// `None` when authentication is off.
    keys: Option<HashMap<[u8; 32], Grant>>,
    quotas: HashMap<Tenant, (DefaultDirectRateLimiter, u32)>,
}

const ROLES: [&str; 7] = [
    "embed",
    "classify",
    "sentiment",
    "rag",
    "recommend",
    "monitor",
    "worker",
];

impl Auth {
    /// Reads the keys file, if one is configured.
    pub fn load(config: &AuthConfig) -> Result<Self, AuthError> {
        let Some(path) = &config.api_keys_file else {
            return Ok(Self::default());
        };
        let problem = |problem: String| AuthError::File {
            path: path.clone(),
            problem,
        };
        if !path.is_file() {
            return Err(problem("no such file".into()));
        }
        let file = parse(Toml::file_exact(path)).map_err(problem)?;
        Self::from_file(file, config).map_err(problem)
    }

    fn from_file(file: KeysFile, config: &AuthConfig) -> Result<Self, String> {
        if file.keys.is_empty() {
            return Err("no [[keys]]: every call would be refused".into());
        }
        let mut keys = HashMap::new();
        for (index, entry) in file.keys.into_iter().enumerate() {
            let digest = digest_of(&entry).map_err(|e| format!("keys[{index}]: {e}"))?;
            if let Some(role) = entry
                .roles
                .iter()
                .flatten()
                .find(|r| !ROLES.contains(&r.as_str()))
            {
                return Err(format!(
                    "keys[{index}]: unknown role {role:?} (roles: {})",
                    ROLES.join(", ")
                ));
            }
            let grant = Grant {
                tenant: Tenant::new(entry.tenant.as_str()),
                roles: entry.roles,
            };
            if keys.insert(digest, grant).is_some() {
                return Err(format!("keys[{index}]: the same key appears twice"));
            }
        }
        let quotas = quotas(&keys, &file.tenants, config)?;
        Ok(Self {
            keys: Some(keys),
            quotas,
        })
    }

    pub fn enabled(&self) -> bool {
        self.keys.is_some()
    }

    /// The tenant `key` authenticates, if any (used by tests and `auth` diagnostics).
    fn grant(&self, key: &str) -> Option<&Grant> {
        self.keys.as_ref()?.get(&sha256(key))
    }

    fn check_quota(&self, tenant: &Tenant) -> Result<(), Status> {
        let Some((limiter, rate)) = self.quotas.get(tenant) else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            longview_worker::retry_after(
                format!(
                    "tenant {tenant} is over its quota of {rate} requests per second; \
                     retry in {} ms",
                    wait.as_millis().max(1)
                ),
                wait,
            )
        })
    }
}

fn parse(toml: figment::providers::Data<Toml>) -> Result<KeysFile, String> {
    figment::Figment::from(toml)
        .extract()
        .map_err(|e| e.to_string())
}

fn digest_of(entry: &KeyEntry) -> Result<[u8; 32], String> {
    match (&entry.key, &entry.sha256) {
        (Some(key), None) if key.len() >= 16 => Ok(sha256(key)),
        (Some(_), None) => Err("key must be at least 16 characters".into()),
        (None, Some(hex_digest)) => {
            let bytes = hex::decode(hex_digest.trim()).map_err(|e| format!("sha256: {e}"))?;
            bytes
                .try_into()
                .map_err(|_| "sha256 must be 64 hex digits".to_string())
        }
        _ => Err("give exactly one of key or sha256".into()),
    }
}

fn sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// One rate limiter per tenant that has a quota (its own or the default).
fn quotas(
    keys: &HashMap<[u8; 32], Grant>,
    own: &BTreeMap<String, TenantQuota>,
    config: &AuthConfig,
) -> Result<HashMap<Tenant, (DefaultDirectRateLimiter, u32)>, String> {
    let mut quotas = HashMap::new();
    for grant in keys.values() {
        let tenant = &grant.tenant;
        let quota = own.get(tenant.as_str());
        let rate = quota
            .and_then(|q| q.requests_per_second)
            .unwrap_or(config.requests_per_second);
        let burst = quota.and_then(|q| q.burst).unwrap_or(config.burst);
        let Some(per_second) = NonZeroU32::new(rate) else {
            continue;
        };
        let burst = NonZeroU32::new(burst).unwrap_or(per_second);
        let limiter =
            DefaultDirectRateLimiter::direct(Quota::per_second(per_second).allow_burst(burst));
        quotas.insert(tenant.clone(), (limiter, rate));
    }
    let keyed = |name: &String| keys.values().any(|g| g.tenant.as_str() == name);
    match own.keys().find(|name| !keyed(name)) {
        Some(name) => Err(format!("[tenants.{name}] has no key")),
        None => Ok(quotas),
    }
}

impl Gate for Auth {
    type Pass = ();

    fn admit(&self, request: &mut Request<Body>) -> Result<(), Status> {
        let route = route_of(request);
        if route.is_open() {
            return Ok(());
        }
        let bearer = request.headers_mut().remove(http::header::AUTHORIZATION);
        let tenant = match &self.keys {
            None => Tenant::default(),
            Some(_) => {
                let key = bearer
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .and_then(bearer_token)
                    .ok_or_else(|| {
                        Status::unauthenticated(
                            "missing API key: send metadata `authorization: Bearer <key>`",
                        )
                    })?;
                let grant = self
                    .grant(key)
                    .ok_or_else(|| Status::unauthenticated("unknown API key"))?;
                permit(grant, route.access)?;
                self.check_quota(&grant.tenant)?;
                grant.tenant.clone()
            }
        };
        tracing::Span::current().record("tenant", tenant.as_str());
        request.extensions_mut().insert(tenant);
        Ok(())
    }
}

fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn permit(grant: &Grant, access: Access) -> Result<(), Status> {
    let (Access::Role(role), Some(roles)) = (access, &grant.roles) else {
        return Ok(());
    };
    if roles.iter().any(|r| r == role) {
        return Ok(());
    }
    Err(Status::permission_denied(format!(
        "this API key (tenant {}) is not allowed the {role} role; it may use: {}",
        grant.tenant,
        roles.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [[keys]]
        tenant = "acme"
        key = "acme-key-0123456789"
        roles = ["classify"]

        [[keys]]
        tenant = "globex"
        sha256 = "SHA"

        [tenants.acme]
        requests_per_second = 2
    "#;

    fn auth() -> Auth {
        let file = FILE.replace("SHA", &hex::encode(sha256("globex-key-0123456789")));
        let file = parse(Toml::string(&file)).unwrap();
        Auth::from_file(file, &AuthConfig::default()).unwrap()
    }

    #[test]
    fn keys_and_hashes_name_their_tenant() {
        let auth = auth();
        assert_eq!(
            auth.grant("acme-key-0123456789").unwrap().tenant.as_str(),
            "acme"
        );
        assert_eq!(
            auth.grant("globex-key-0123456789").unwrap().tenant.as_str(),
            "globex"
        );
        assert!(auth.grant("nobody-0123456789").is_none());
    }

    #[test]
    fn roles_restrict_keys() {
        let auth = auth();
        let acme = auth.grant("acme-key-0123456789").unwrap();
        assert!(permit(acme, Access::Role("classify")).is_ok());
        let denied = permit(acme, Access::Role("embed")).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(
            denied.message().contains("classify"),
            "{}",
            denied.message()
        );
    }

    #[test]
    fn quota_refuses_with_a_retry_hint() {
        let auth = auth();
        let acme = Tenant::new("acme");
        assert!(auth.check_quota(&acme).is_ok());
        assert!(auth.check_quota(&acme).is_ok());
        let refused = auth.check_quota(&acme).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.metadata().get("retry-after-ms").is_some());
        assert!(auth.check_quota(&Tenant::new("globex")).is_ok());
    }

    #[test]
    fn bad_files_are_refused_by_entry() {
        for (file, problem) in [
            ("", "no [[keys]]"),
            (
                "[[keys]]\ntenant = \"a\"\nkey = \"short\"",
                "keys[0]: key must be",
            ),
            (
                "[[keys]]\ntenant = \"a\"\nkey = \"long-enough-key-123\"\nroles = [\"clasify\"]",
                "unknown role \"clasify\"",
            ),
        ] {
            let file = parse(Toml::string(file)).unwrap();
            let err = Auth::from_file(file, &AuthConfig::default()).unwrap_err();
            assert!(err.contains(problem), "{err}");
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
