//! TLS on the frontend port, with rustls. `Incoming` hands tonic only connections whose
//! handshake succeeded: each is handshaken in its own task under a timeout, so a slow,
//! stalled or plaintext client holds up no one. The certificate, key and client CA files are
//! read again when they change, so a rotated certificate is served without a restart.
//!
//! Who is calling: tonic puts the connection's `Peer` in the extensions of each of its calls,
//! where a tower layer over the services (an authorizer) finds it in the `http::Request`'s
//! and a handler in the `tonic::Request`'s:
//!
//! ```ignore
//! let peer = request.extensions().get::<chronicle_frontend::tls::Peer>();
//! if let Some(cert) = peer.and_then(|p| p.client.as_deref()) {
//!     // mTLS: the certificate was verified against `client_ca_file`.
//!     let (cn, dns, uris) = (&cert.common_name, &cert.dns_names, &cert.uris);
//!     let all: &[String] = &cert.identities; // the three, the common name first
//! }
//! ```

mod incoming;
mod peer;
#[cfg(test)]
mod tests;

pub use incoming::{Connection, Incoming};
pub use peer::{ClientCert, Peer};

use crate::FrontendError;
use chronicle_common::config::TlsConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// How long a client has to finish its handshake before its connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The frontend's TLS: the rustls config made of the files as last read, made again when
/// their contents change. The whole config is remade, not only the certified key, so a new
/// client CA is picked up the same way.
pub struct Tls {
    files: Files,
    reload: Duration,
    handshake_timeout: Duration,
    state: Mutex<State>,
}

struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

/// The files' bytes. Compared whole rather than by modification time: file times are as
/// coarse as the kernel's tick, and a rotated certificate often has the old one's length.
#[derive(PartialEq, Eq)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

struct State {
    config: Arc<ServerConfig>,
    /// What `config` was made of, or the later contents that could not make one: a broken
    /// change is reported once, and tried again only when the files change again.
    contents: Contents,
    checked: Instant,
    /// The last failure to read the files, so a file that stays missing is reported once.
    unreadable: Option<String>,
}

impl Tls {
    /// Reads the files; a node does not start on files that do not make a config.
    pub fn new(config: &TlsConfig) -> Result<Self, FrontendError> {
        let files = Files {
            cert: config.cert_file.clone(),
            key: config.key_file.clone(),
            client_ca: config.client_ca_file.clone(),
        };
        let contents = files.read()?;
        let server = files.build(&contents)?;
        Ok(Self {
            files,
            reload: Duration::from_secs(config.reload_secs),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            state: Mutex::new(State {
                config: Arc::new(server),
                contents,
                checked: Instant::now(),
                unreadable: None,
            }),
        })
    }

    /// Whether every client must present a certificate signed by the client CA.
    pub fn mutual(&self) -> bool {
        self.files.client_ca.is_some()
    }

    #[cfg(test)]
    fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The config for a new connection: made again first if the files changed since they
    /// were last read (looked at once per `reload` at most) and still make one.
    fn config(&self) -> Arc<ServerConfig> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() < self.reload {
            return state.config.clone();
        }
        state.checked = Instant::now();
        let contents = match self.files.read() {
            Ok(contents) => {
                state.unreadable = None;
                contents
            }
            Err(e) => {
                let message = e.to_string();
                if state.unreadable.as_ref() != Some(&message) {
                    tracing::error!(error = %message, "TLS files unreadable; the certificate in use is kept");
                    state.unreadable = Some(message);
                }
                return state.config.clone();
            }
        };
        if contents == state.contents {
            return state.config.clone();
        }
        match self.files.build(&contents) {
            Ok(config) => {
                tracing::info!(cert_file = %self.files.cert.display(), "TLS files changed: new connections get the new certificate");
                state.config = Arc::new(config);
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS files changed but make no usable certificate; the one in use is kept");
            }
        }
        state.contents = contents;
        state.config.clone()
    }
}

fn tls_error(message: String) -> FrontendError {
    FrontendError::Tls(message)
}

fn read(path: &Path) -> Result<Vec<u8>, FrontendError> {
    std::fs::read(path).map_err(|e| tls_error(format!("cannot read {}: {e}", path.display())))
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, FrontendError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(tls_error(format!(
            "{}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

impl Files {
    fn read(&self) -> Result<Contents, FrontendError> {
        Ok(Contents {
            cert: read(&self.cert)?,
            key: read(&self.key)?,
            client_ca: self.client_ca.as_deref().map(read).transpose()?,
        })
    }

    fn build(&self, contents: &Contents) -> Result<ServerConfig, FrontendError> {
        // Named rather than taken from the process default, which is ambiguous when more
        // than one provider is compiled in.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?;
        let builder = match (&self.client_ca, &contents.client_ca) {
            (Some(path), Some(pem)) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(path, pem)? {
                    roots
                        .add(cert)
                        .map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let chain = certificates(&self.cert, &contents.cert)?;
        let key = PrivateKeyDer::from_pem_slice(&contents.key)
            .map_err(|e| tls_error(format!("{}: {e}", self.key.display())))?;
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            tls_error(format!(
                "{} and {}: {e}",
                self.cert.display(),
                self.key.display()
            ))
        })?;
        // gRPC is HTTP/2; a client that offers ALPN without h2 is refused in the handshake.
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}
