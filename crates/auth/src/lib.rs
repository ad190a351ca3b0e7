//! Authorization of API calls, off unless configured, as Temporal's default JWT claim mapper
//! and default authorizer decide it, with a few additions.
//!
//! An [`Authorizer`] is built once from [`AuthConfig`] and asked about each call
//! ([`Authorizer::authorize`]) with what the frontend knows of it ([`CallInfo`]): the caller
//! is identified by a bearer JWT in `authorization` (verified against JWKS keys: RS256 or
//! ES256, `exp` with leeway, `nbf`, and `aud`/`iss` when configured) or by a verified mTLS
//! client certificate listed in `tls_identities`; its roles come from the token's
//! permissions claim (`namespace:role` entries, system scopes applying to every namespace);
//! the API's [`Requirement`] (the table in `apis.rs`) decides.
//!
//! Beyond Temporal: the permissions and subject claims are dotted paths into nested claims,
//! the entry pattern is configurable, mTLS identities map to roles, the worker role may poll
//! and answer tasks (see [`Role`]), and denials say what was missing.
//!
//! Keys are reloaded by [`Authorizer::run_refresh`], a task the caller spawns: every
//! `jwks_refresh_secs`, and sooner (at most every 30 s) when a token names a key id not
//! loaded. `authorize` stays synchronous, never waiting on the network inside a call: the
//! call naming a new key is refused and the ones after the reload pass.

mod apis;
mod config;
mod jwt;
mod keys;
mod roles;
mod verified;

#[cfg(test)]
mod tests;

pub use apis::{Requirement, Service, requirement};
pub use config::AuthConfig;
pub use roles::{Principal, PrincipalKind, Role};

use jwt::TokenRules;
use keys::{KeySet, Sources};
use roles::{EntryReader, Roles};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A configuration that cannot be used, or keys that cannot be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("[auth] configuration: {0}")]
    Config(String),
    #[error("JWKS: {0}")]
    Jwks(String),
}

/// What the frontend knows of one call.
#[derive(Clone, Copy, Debug)]
pub struct CallInfo<'a> {
    pub service: Service,
    /// The gRPC method without its service, e.g. `StartWorkflowExecution`.
    pub api: &'a str,
    /// The request's namespace; empty when the request has none.
    pub namespace: &'a str,
    /// The raw `authorization` metadata value, if sent.
    pub authorization: Option<&'a str>,
    /// The identities of the verified mTLS client certificate: its subject common name and
    /// its subject alternative names. Empty without one.
    pub peer_identities: &'a [String],
}

/// Why a call is refused.
///
/// Temporal answers PERMISSION_DENIED ("Request unauthorized.") for every refusal, a
/// missing, malformed or expired token included, so Chronicle's frontend should turn both
/// kinds into PERMISSION_DENIED too: SDKs and the CLI then behave as against Temporal (none
/// retries it). The kind is kept so the two can be logged and counted apart; the message,
/// unlike Temporal's, says what was missing, which tells the caller nothing about anyone
/// else.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    pub kind: DeniedKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeniedKind {
    /// No usable credentials: no token and no listed certificate, or a token that is
    /// malformed, badly signed, expired, not yet valid or for another audience.
    Unauthenticated,
    /// The caller is known but lacks the role the call needs.
    PermissionDenied,
}

impl Denied {
    pub(crate) fn unauthenticated(why: impl fmt::Display) -> Self {
        Self {
            kind: DeniedKind::Unauthenticated,
            message: format!("Request unauthorized: {why}"),
        }
    }

    pub(crate) fn permission(why: impl fmt::Display) -> Self {
        Self {
            kind: DeniedKind::PermissionDenied,
            message: format!("Request unauthorized: {why}"),
        }
    }
}

impl Principal {
    /// Whether this principal may call `api` of `service` in `namespace`; the frontend asks
    /// again with each other namespace a call reaches, as Temporal does for the commands of
    /// a workflow task that signal, cancel or start workflows in another namespace
    /// (`SignalWorkflowExecution`, `RequestCancelWorkflowExecution`,
    /// `StartWorkflowExecution` there).
    pub fn check(&self, service: Service, api: &str, namespace: &str) -> Result<(), Denied> {
        let who = match self.name.as_str() {
            "" => "the caller".to_owned(),
            name => format!("{name:?}"),
        };
        let holds = |role: Option<Role>| match role {
            Some(role) => format!("holds only {role}"),
            None => "holds none".to_owned(),
        };
        match requirement(service, api) {
            Requirement::Open => Ok(()),
            Requirement::Namespace(needed) => {
                let held = self.role_in(namespace);
                if held >= Some(needed) {
                    return Ok(());
                }
                Err(Denied::permission(format!(
                    "{api} in namespace {namespace:?} needs role {needed} there or as a system role; {who} {}",
                    holds(held)
                )))
            }
            Requirement::System(needed) => {
                let held = self.system_role();
                if held >= Some(needed) {
                    return Ok(());
                }
                Err(Denied::permission(format!(
                    "{api} needs system role {needed}; {who} {}",
                    holds(held)
                )))
            }
        }
    }
}

/// Decides calls. Cheap to clone: clones share the keys and their refresh.
#[derive(Clone)]
pub struct Authorizer {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    entries: EntryReader,
    tokens: TokenRules,
    tls_identities: HashMap<String, Roles>,
    sources: Sources,
    keys: RwLock<Loaded>,
    /// When keys were last (re)loaded from every source, successfully or not.
    refreshed: Mutex<Option<Instant>>,
    refresh_every: Duration,
    /// The least time between two reloads that unknown key ids ask for, so that tokens
    /// naming made-up key ids cannot make Chronicle hammer the identity provider.
    min_refresh: Duration,
    unknown_key: Notify,
    verified: verified::Verified,
}

/// The last good key set of each source; the file's are looked up first.
#[derive(Default)]
struct Loaded {
    file: Arc<KeySet>,
    url: Arc<KeySet>,
}

const MIN_REFRESH: Duration = Duration::from_secs(30);

impl Authorizer {
    /// Checks the configuration and, when enabled, reads the JWKS file (a URL is fetched
    /// by [`refresh`](Self::refresh) or [`run_refresh`](Self::run_refresh)).
    pub fn new(config: &AuthConfig) -> Result<Self, AuthError> {
        Self::build(config, MIN_REFRESH)
    }

    pub(crate) fn build(config: &AuthConfig, min_refresh: Duration) -> Result<Self, AuthError> {
        let entries = EntryReader::new(&config.permission_pattern, &config.system_scopes)?;
        let tls_identities = config
            .tls_identities
            .iter()
            .map(|(identity, list)| {
                Ok((identity.clone(), entries.roles_from_config(list, identity)?))
            })
            .collect::<Result<_, AuthError>>()?;
        if config.jwks_refresh_secs == 0 {
            return Err(AuthError::Config(
                "jwks_refresh_secs must be at least 1".into(),
            ));
        }
        let refresh_every = Duration::from_secs(config.jwks_refresh_secs);
        let (sources, file_keys) = if config.enabled {
            let sources = Sources::new(config.jwks_file.clone(), config.jwks_url.clone())?;
            let keys = sources.read_file_now()?.unwrap_or_default();
            (sources, keys)
        } else {
            (Sources::default(), KeySet::new())
        };
        // Without a URL everything was just loaded; with one, the refresh task fetches it
        // at once.
        let refreshed = (config.enabled && sources.url.is_none()).then(Instant::now);
        let inner = Inner {
            enabled: config.enabled,
            entries,
            tokens: TokenRules::new(config),
            tls_identities,
            sources,
            keys: RwLock::new(Loaded {
                file: Arc::new(file_keys),
                url: Arc::default(),
            }),
            refreshed: Mutex::new(refreshed),
            refresh_every,
            min_refresh: min_refresh.min(refresh_every),
            unknown_key: Notify::new(),
            verified: verified::Verified::default(),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// The caller of `call` if it may make it. With authorization off every call is
    /// allowed to an anonymous principal holding every role, as Temporal allows every call
    /// without an authorizer; open APIs are allowed without looking at credentials.
    pub fn authorize(&self, call: &CallInfo<'_>) -> Result<Principal, Denied> {
        if !self.inner.enabled {
            return Ok(Principal::anonymous(Roles::all()));
        }
        if requirement(call.service, call.api) == Requirement::Open {
            return Ok(Principal::anonymous(Roles::default()));
        }
        let principal = self.identify(call)?;
        principal.check(call.service, call.api, call.namespace)?;
        Ok(principal)
    }

    /// A token, when sent, must verify even if a listed certificate came with it: a bad
    /// token is refused rather than ignored.
    fn identify(&self, call: &CallInfo<'_>) -> Result<Principal, Denied> {
        let mut tls_name = None;
        let mut tls_roles = Roles::default();
        for identity in call.peer_identities {
            if let Some(roles) = self.inner.tls_identities.get(identity) {
                tls_name.get_or_insert(identity);
                tls_roles.merge(roles);
            }
        }
        let authorization = call.authorization.filter(|value| !value.trim().is_empty());
        match (authorization, tls_name) {
            (Some(authorization), _) => {
                let claims = self.verify(authorization)?;
                let mut roles = claims.roles;
                roles.merge(&tls_roles);
                Ok(Principal {
                    kind: PrincipalKind::Jwt,
                    name: claims.subject,
                    roles,
                })
            }
            (None, Some(identity)) => Ok(Principal {
                kind: PrincipalKind::Tls,
                name: identity.clone(),
                roles: tls_roles,
            }),
            (None, None) if call.peer_identities.is_empty() => Err(Denied::unauthenticated(
                "no credentials: send `authorization: Bearer <token>`",
            )),
            (None, None) => Err(Denied::unauthenticated(format!(
                "no bearer token, and the client certificate ({}) is not in auth.tls_identities",
                call.peer_identities.join(", ")
            ))),
        }
    }

    fn verify(&self, authorization: &str) -> Result<jwt::TokenClaims, Denied> {
        if let Some(claims) = self.inner.verified.get(authorization) {
            return Ok(claims);
        }
        let claims = self.verify_signed(authorization)?;
        self.inner.verified.keep(authorization, &claims);
        Ok(claims)
    }

    fn verify_signed(&self, authorization: &str) -> Result<jwt::TokenClaims, Denied> {
        let (file, url) = {
            let keys = self
                .inner
                .keys
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            (keys.file.clone(), keys.url.clone())
        };
        self.inner
            .tokens
            .verify(authorization, &[&file, &url], &self.inner.entries)
            .map_err(|error| {
                if matches!(error, jwt::TokenError::UnknownKey(_)) {
                    self.inner.unknown_key.notify_one();
                }
                Denied::from(error)
            })
    }

    /// Reloads the JWKS file and fetches the JWKS URL now. A source that fails keeps its
    /// previous keys; the error says which failed.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let sources = &self.inner.sources;
        let (file, url) = (sources.read_file().await, sources.fetch_url().await);
        let mut errors = Vec::new();
        {
            let mut keys = self
                .inner
                .keys
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            match file {
                Ok(Some(set)) => keys.file = Arc::new(set),
                Ok(None) => {}
                Err(e) => errors.push(e.to_string()),
            }
            match url {
                Ok(Some(set)) => keys.url = Arc::new(set),
                Ok(None) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        // Tokens verified with keys that may be gone now are checked again.
        self.inner.verified.forget_all();
        *self
            .inner
            .refreshed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        match errors.len() {
            0 => Ok(()),
            _ => Err(AuthError::Jwks(errors.join("; "))),
        }
    }

    /// Reloads the keys for as long as it runs: at once if the URL was never fetched, then
    /// every `jwks_refresh_secs`, and when a token named an unknown key id (no sooner than
    /// 30 s after the last reload). Failures are logged and the held keys kept. Returns at
    /// once when authorization is off or there is no JWKS; otherwise never, so spawn it
    /// (`tokio::spawn(authorizer.clone().run_refresh())`) and abort it at shutdown.
    pub async fn run_refresh(self) {
        let sources = &self.inner.sources;
        if !self.inner.enabled || (sources.file.is_none() && sources.url.is_none()) {
            return;
        }
        loop {
            let last = *self
                .inner
                .refreshed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(last) = last {
                tokio::select! {
                    () = tokio::time::sleep_until(last + self.inner.refresh_every) => {}
                    () = self.inner.unknown_key.notified() => {
                        tokio::time::sleep_until(last + self.inner.min_refresh).await;
                    }
                }
            }
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "JWKS reload failed; the keys held are kept");
            }
        }
    }
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("enabled", &self.inner.enabled)
            .field("jwks_file", &self.inner.sources.file)
            .field(
                "jwks_url",
                &self.inner.sources.url.as_ref().map(|(url, _)| url),
            )
            .finish_non_exhaustive()
    }
}
