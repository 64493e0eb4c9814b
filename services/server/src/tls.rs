//! TLS and mutual TLS (rustls, through tonic) from PEM files: the server's certificate
//! and key, and optionally the CA that client certificates must chain to. Our client
//! commands take the matching --ca, --cert and --key.

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, Server, ServerTlsConfig};

/// The `[tls]` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TlsConfig {
    /// PEM certificate chain the server presents.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM CA bundle; when set, clients must present a certificate it signed (mTLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }

    /// The server's TLS settings, or `None` for plaintext. Reads and parses the files,
    /// so a bad certificate fails at start, not at the first handshake.
    pub fn server(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        let (cert, key) = match (&self.cert, &self.key) {
            (None, None) => {
                anyhow::ensure!(
                    self.client_ca.is_none(),
                    "tls.client_ca needs tls.cert and tls.key"
                );
                return Ok(None);
            }
            (Some(cert), Some(key)) => (cert, key),
            _ => anyhow::bail!("tls.cert and tls.key go together"),
        };
        let identity = Identity::from_pem(read(cert, "tls.cert")?, read(key, "tls.key")?);
        let mut tls = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            tls = tls.client_ca_root(Certificate::from_pem(read(ca, "tls.client_ca")?));
        }
        // Building a server parses the PEM files into a rustls configuration.
        Server::builder()
            .tls_config(tls.clone())
            .context("tls: the certificate, key or client CA is not valid PEM")?;
        Ok(Some(tls))
    }
}

/// Client TLS for `https://` servers: trust `ca` (else the system's roots) and present
/// `cert` and `key` when the server asks for a client certificate.
pub fn client(
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> anyhow::Result<ClientTlsConfig> {
    let mut tls = ClientTlsConfig::new();
    tls = match ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca, "--ca")?)),
        None => tls.with_native_roots(),
    };
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(tls.identity(Identity::from_pem(
            read(cert, "--cert")?,
            read(key, "--key")?,
        ))),
        (None, None) => Ok(tls),
        _ => anyhow::bail!("--cert and --key go together"),
    }
}

/// A private CA with one server and one client certificate, for trying TLS and mutual TLS
/// locally and for tests (`longview tls dev-certs`). Not for production: the keys are
/// written unencrypted.
#[derive(Debug)]
pub struct DevCertificates {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

impl DevCertificates {
    /// A server certificate valid for `hosts` (DNS names or IP addresses).
    pub fn generate(hosts: &[String]) -> anyhow::Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Longview development CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let server_key = KeyPair::generate()?;
        let server_cert = CertificateParams::new(hosts.to_vec())?.signed_by(&server_key, &ca)?;
        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "longview-client");
        let client_cert = client_params.signed_by(&client_key, &ca)?;
        Ok(Self {
            ca: ca.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
        })
    }

    /// Writes ca.pem, server.pem, server.key, client.pem and client.key into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, pem) in [
            ("ca.pem", &self.ca),
            ("server.pem", &self.server_cert),
            ("server.key", &self.server_key),
            ("client.pem", &self.client_cert),
            ("client.key", &self.client_key),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{what}: reading {}", path.display()))
}
