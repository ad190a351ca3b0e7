//! The keys tokens are verified with: read from a JWKS file and fetched from a JWKS URL.

use crate::AuthError;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A key of a JWKS and the one algorithm it verifies.
pub(crate) struct Key {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// Usable keys by key id.
pub(crate) type KeySet = HashMap<String, Key>;

/// The algorithms accepted, as Temporal's key provider accepts them.
pub(crate) const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

/// A JWKS is read member by member so that one key this crate cannot use (another key type,
/// a curve it does not know) leaves the others usable.
#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// The RS256 and ES256 signing keys with a key id in a JWKS document.
pub(crate) fn parse_jwks(text: &[u8], source: &str) -> Result<KeySet, AuthError> {
    let raw: RawSet = serde_json::from_slice(text)
        .map_err(|e| AuthError::Jwks(format!("{source}: not a JWKS: {e}")))?;
    let mut keys = KeySet::new();
    for value in raw.keys {
        match usable(value) {
            Ok((kid, key)) => {
                keys.insert(kid, key);
            }
            Err(why) => tracing::debug!(source, why, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        return Err(AuthError::Jwks(format!(
            "{source}: no RS256 or ES256 signing key with a key id"
        )));
    }
    Ok(keys)
}

fn usable(value: serde_json::Value) -> Result<(String, Key), &'static str> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| "not a JWK")?;
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err("an encryption key");
    }
    let kid = jwk.common.key_id.clone().ok_or("no key id")?;
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return Err("neither RSA nor EC P-256"),
    };
    let declared = jwk.common.key_algorithm;
    let matches = match alg {
        Algorithm::RS256 => matches!(declared, None | Some(KeyAlgorithm::RS256)),
        _ => matches!(declared, None | Some(KeyAlgorithm::ES256)),
    };
    if !matches {
        return Err("declared for another algorithm");
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "malformed key")?;
    Ok((kid, Key { alg, key }))
}

/// A JWKS document is a few kilobytes; anything far larger is not one.
const MAX_JWKS_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where keys come from. Each source keeps its last good key set, so an unreachable URL or a
/// file caught mid-write leaves the keys as they were.
#[derive(Default)]
pub(crate) struct Sources {
    pub file: Option<PathBuf>,
    pub url: Option<(String, reqwest::Client)>,
}

impl Sources {
    pub fn new(file: Option<PathBuf>, url: Option<String>) -> Result<Self, AuthError> {
        let url = match url {
            None => None,
            Some(url) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(AuthError::Config(format!(
                        "jwks_url `{url}` is neither https:// nor http://"
                    )));
                }
                let client = http_client()?;
                Some((url, client))
            }
        };
        Ok(Self { file, url })
    }

    pub fn read_file_now(&self) -> Result<Option<KeySet>, AuthError> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let text = std::fs::read(path)
            .map_err(|e| AuthError::Jwks(format!("cannot read {}: {e}", path.display())))?;
        parse_jwks(&text, &path.display().to_string()).map(Some)
    }

    pub async fn read_file(&self) -> Result<Option<KeySet>, AuthError> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let text = tokio::fs::read(path)
            .await
            .map_err(|e| AuthError::Jwks(format!("cannot read {}: {e}", path.display())))?;
        parse_jwks(&text, &path.display().to_string()).map(Some)
    }

    pub async fn fetch_url(&self) -> Result<Option<KeySet>, AuthError> {
        let Some((url, client)) = &self.url else {
            return Ok(None);
        };
        let failed = |e: reqwest::Error| AuthError::Jwks(format!("cannot fetch {url}: {e}"));
        let mut response = client
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(failed)?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(AuthError::Jwks(format!(
                    "{url}: the JWKS is over {MAX_JWKS_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body, url).map(Some)
    }
}

/// The client is given its TLS settings whole, with ring as the crypto provider and the
/// platform's trust store, so that nothing depends on a process-wide rustls provider being
/// installed (reqwest's `rustls-no-provider` would otherwise panic without one).
fn http_client() -> Result<reqwest::Client, AuthError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let tls_failed = |e: rustls::Error| AuthError::Config(format!("TLS for jwks_url: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_failed)?
        .with_platform_verifier()
        .map_err(tls_failed)?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| AuthError::Config(format!("HTTP client for jwks_url: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_members_are_skipped() {
        let text = br#"{"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AQAB", "y": "AQAB"},
            {"kty": "RSA", "kid": "r", "alg": "RS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "weird", "kid": "w"}
        ]}"#;
        let keys = parse_jwks(text, "test").unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["r"]);
        assert_eq!(keys["r"].alg, Algorithm::RS256);
    }

    #[test]
    fn a_set_without_usable_keys_is_refused() {
        assert!(parse_jwks(br#"{"keys": []}"#, "t").is_err());
        assert!(parse_jwks(b"not json", "t").is_err());
        assert!(parse_jwks(br#"{"kty": "RSA"}"#, "t").is_err());
    }

    #[test]
    fn only_http_urls_are_taken() {
        assert!(Sources::new(None, Some("file:///etc/jwks.json".into())).is_err());
        assert!(Sources::new(None, Some("https://idp.example/jwks".into())).is_ok());
    }
}
