//! What the configuration's security settings become at start: the authentication gate,
//! per-tenant masking and the server's TLS.

use crate::auth::Auth;
use crate::config::ServeConfig;
use anyhow::Context;
use longview_core::Masking;
use std::sync::Arc;
use tonic::transport::ServerTlsConfig;

pub struct Security {
    pub auth: Arc<Auth>,
    /// Services call `masking.apply(&tenant, text)` before text leaves the process.
    pub masking: Arc<Masking>,
    pub tls: Option<ServerTlsConfig>,
}

impl Security {
    /// Reads the keys file and the certificates, compiles the masking patterns.
    pub fn load(config: &ServeConfig) -> anyhow::Result<Self> {
        Ok(Self {
            auth: Arc::new(Auth::load(&config.auth)?),
            masking: Arc::new(Masking::new(&config.masking).context("masking")?),
            tls: config.tls.server()?,
        })
    }
}
