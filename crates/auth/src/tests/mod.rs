//! Tests through the public API with real keys (testdata/), real JWKS and signed tokens.

mod calls;
mod refresh;
mod tokens;

use crate::{AuthConfig, Authorizer, CallInfo, Denied, DeniedKind, Principal, Service};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) struct Signer {
    kid: &'static str,
    alg: Algorithm,
    key: EncodingKey,
}

impl Signer {
    fn rsa(kid: &'static str, pem: &[u8]) -> Self {
        let key = EncodingKey::from_rsa_pem(pem).unwrap();
        Self {
            kid,
            alg: Algorithm::RS256,
            key,
        }
    }

    fn ec(kid: &'static str, pem: &[u8]) -> Self {
        let key = EncodingKey::from_ec_pem(pem).unwrap();
        Self {
            kid,
            alg: Algorithm::ES256,
            key,
        }
    }

    /// The first RSA test key, as key id `rsa-1`.
    pub fn rsa1() -> Self {
        Self::rsa("rsa-1", include_bytes!("../../testdata/rsa1.pem"))
    }

    pub fn rsa2() -> Self {
        Self::rsa("rsa-2", include_bytes!("../../testdata/rsa2.pem"))
    }

    pub fn ec1() -> Self {
        Self::ec("ec-1", include_bytes!("../../testdata/ec1.pem"))
    }

    pub fn ec2() -> Self {
        Self::ec("ec-2", include_bytes!("../../testdata/ec2.pem"))
    }

    /// The same key under another key id.
    pub fn with_kid(mut self, kid: &'static str) -> Self {
        self.kid = kid;
        self
    }

    /// The public half as a JWK with this signer's key id.
    pub fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.to_owned());
        serde_json::to_value(jwk).unwrap()
    }

    /// `claims` signed, with this signer's algorithm and key id in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.to_owned());
        encode(&header, claims, &self.key).unwrap()
    }

    /// `Bearer <token>` for a token of subject alice holding `permissions`, valid 10 minutes.
    pub fn bearer(&self, permissions: &[&str]) -> String {
        format!("Bearer {}", self.sign(&claims(permissions)))
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn claims(permissions: &[&str]) -> Value {
    json!({"sub": "alice", "exp": now() + 600, "permissions": permissions})
}

pub(crate) fn jwks(signers: &[&Signer]) -> String {
    json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()}).to_string()
}

/// A JWKS file removed when dropped.
pub(crate) struct JwksFile(pub PathBuf);

impl JwksFile {
    pub fn new(signers: &[&Signer]) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "chronicle-auth-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let file = Self(std::env::temp_dir().join(name));
        file.write(signers);
        file
    }

    pub fn write(&self, signers: &[&Signer]) {
        std::fs::write(&self.0, jwks(signers)).unwrap();
    }
}

impl Drop for JwksFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(crate) fn config(file: &JwksFile) -> AuthConfig {
    AuthConfig {
        enabled: true,
        jwks_file: Some(file.0.clone()),
        ..AuthConfig::default()
    }
}

/// An authorizer trusting `signers`, with its JWKS file (kept alive with it).
pub(crate) fn authorizer(signers: &[&Signer]) -> (Authorizer, JwksFile) {
    let file = JwksFile::new(signers);
    let authz = Authorizer::new(&config(&file)).unwrap();
    (authz, file)
}

pub(crate) fn call<'a>(api: &'a str, namespace: &'a str, authorization: &'a str) -> CallInfo<'a> {
    CallInfo {
        service: Service::Workflow,
        api,
        namespace,
        authorization: Some(authorization),
        peer_identities: &[],
    }
}

pub(crate) fn allowed(authz: &Authorizer, call: &CallInfo<'_>) -> Principal {
    authz
        .authorize(call)
        .unwrap_or_else(|denied| panic!("{} {:?} refused: {denied}", call.api, call.namespace))
}

pub(crate) fn denied(authz: &Authorizer, call: &CallInfo<'_>, kind: DeniedKind) -> Denied {
    let denied = authz
        .authorize(call)
        .err()
        .unwrap_or_else(|| panic!("{} {:?} allowed", call.api, call.namespace));
    assert_eq!(denied.kind, kind, "{denied}");
    denied
}
