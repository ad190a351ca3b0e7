//! TLS settings: `[server.tls]` for the frontend port, `persistence.tls_*` for the connection
//! to PostgreSQL or MySQL.

use serde::Deserialize;
use std::path::PathBuf;

/// `[server.tls]`: the frontend port speaks TLS only (no plaintext beside it).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the server's certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM: CAs a client certificate must chain to. Set, every client must present one (mTLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// How often, at most, the files are checked for a change; a new connection after a
    /// change gets the new certificate. 0 checks at every connection.
    #[serde(default = "default_reload_secs")]
    pub reload_secs: u64,
}

fn default_reload_secs() -> u64 {
    5
}

impl TlsConfig {
    pub fn new(cert_file: PathBuf, key_file: PathBuf, client_ca_file: Option<PathBuf>) -> Self {
        Self {
            cert_file,
            key_file,
            client_ca_file,
            reload_secs: default_reload_secs(),
        }
    }
}

/// `persistence.tls_mode`, in PostgreSQL's words (MySQL's in brackets).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseTlsMode {
    /// No TLS (DISABLED).
    Disable,
    /// TLS, the server's certificate not checked (REQUIRED).
    Require,
    /// TLS to a server whose certificate chains to a trusted CA (VERIFY_CA). sqlx 0.8.6 on
    /// rustls checks the host name here too (see persistence's sql/tls.rs tests).
    VerifyCa,
    /// As verify-ca, and the certificate names the host of the DSN (VERIFY_IDENTITY).
    VerifyFull,
}

/// What `persistence.tls_*` ask of the database connection. Unset, the DSN's own parameters
/// (`sslmode=`, `ssl-mode=`) decide, and without them TLS is used if the server offers it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatabaseTls {
    pub mode: Option<DatabaseTlsMode>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl DatabaseTls {
    pub fn is_set(&self) -> bool {
        *self != Self::default()
    }

    /// The mode in force: a CA file alone means verify-full, since it is only read to verify.
    pub fn effective_mode(&self) -> Option<DatabaseTlsMode> {
        match (self.mode, &self.ca_file) {
            (None, Some(_)) => Some(DatabaseTlsMode::VerifyFull),
            (mode, _) => mode,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("persistence.tls_cert_file and tls_key_file go together".into());
        }
        let verifies = matches!(
            self.effective_mode(),
            Some(DatabaseTlsMode::VerifyCa | DatabaseTlsMode::VerifyFull)
        );
        if self.ca_file.is_some() && !verifies {
            return Err(
                "persistence.tls_ca_file is only read by tls_mode verify-ca or verify-full".into(),
            );
        }
        if self.mode == Some(DatabaseTlsMode::Disable) && self.is_set_beyond_mode() {
            return Err("persistence.tls_mode = \"disable\" takes no TLS files".into());
        }
        Ok(())
    }

    fn is_set_beyond_mode(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_alone_verifies_fully_and_contradictions_are_refused() {
        let ca = DatabaseTls {
            ca_file: Some("ca.pem".into()),
            ..Default::default()
        };
        assert_eq!(ca.effective_mode(), Some(DatabaseTlsMode::VerifyFull));
        assert!(ca.check().is_ok());
        let unread = DatabaseTls {
            mode: Some(DatabaseTlsMode::Require),
            ..ca.clone()
        };
        assert!(unread.check().unwrap_err().contains("only read"));
        let half = DatabaseTls {
            cert_file: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(half.check().unwrap_err().contains("together"));
        let off = DatabaseTls {
            mode: Some(DatabaseTlsMode::Disable),
            cert_file: Some("c.pem".into()),
            key_file: Some("k.pem".into()),
            ..Default::default()
        };
        assert!(off.check().unwrap_err().contains("disable"));
        assert!(!DatabaseTls::default().is_set());
    }
}
