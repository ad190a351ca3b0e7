//! `[auth]` of Chronicle's configuration.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How calls are authorized. Off unless `enabled`: then every call is allowed, as Temporal's
/// server allows every call without an authorizer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether calls are authorized at all. Default `false`.
    pub enabled: bool,
    /// A JWKS file (`{"keys": [...]}`) holding the keys bearer tokens are signed with,
    /// read at start and again at every refresh. Default none.
    pub jwks_file: Option<PathBuf>,
    /// An `https://` (or `http://`) URL serving a JWKS, such as an identity provider's
    /// `jwks_uri`, fetched at every refresh. Default none. With neither a file nor a URL, only
    /// `tls_identities` authenticate.
    pub jwks_url: Option<String>,
    /// Seconds between two reloads of the JWKS file and URL. Default 300. A token naming a
    /// key not loaded yet also triggers a reload, at most once every 30 seconds.
    pub jwks_refresh_secs: u64,
    /// When set, a token's `aud` must be, or contain, this value. Default none: `aud` is not
    /// checked (Temporal's default).
    pub audience: Option<String>,
    /// When set, a token's `iss` must be this value. Default none: `iss` is not checked.
    pub issuer: Option<String>,
    /// Seconds of clock skew allowed when checking `exp` and `nbf`. Default 60.
    pub leeway_secs: u64,
    /// The claim holding the permissions, as a dotted path into nested claims
    /// (`realm_access.roles`); a key that itself contains dots is found whole
    /// (`https://example.com/claims.permissions` is the `permissions` member of the
    /// `https://example.com/claims` claim). The claim is a list of entries, or one string of
    /// entries separated by spaces. Default `permissions`, Temporal's.
    pub permissions_claim: String,
    /// A regular expression an entry must match, with named groups `namespace` and `role`;
    /// entries that do not match are ignored. Default `^(?P<namespace>[^:]+):(?P<role>.+)$`,
    /// so `default:write` is role `write` in namespace `default`. Roles are `read`, `worker`,
    /// `write` and `admin` in any case; namespaces are case-sensitive.
    pub permission_pattern: String,
    /// The claim naming the caller (the principal's name), a dotted path as
    /// `permissions_claim`. Default `sub`. A token without it is refused.
    pub subject_claim: String,
    /// Namespace names whose roles are system roles: they apply to every namespace and are
    /// the ones cluster-wide APIs need. Default `["temporal-system", "system"]` (Temporal's
    /// claim mapper reads `temporal-system:admin`; `system:admin` is the short form).
    pub system_scopes: Vec<String>,
    /// Roles of callers identified by their verified mTLS client certificate: each key is a
    /// certificate subject common name or subject alternative name, each value a list of
    /// `namespace:role` entries (the system scopes as above). Default empty. A caller that
    /// also sends a token holds the roles of both.
    pub tls_identities: BTreeMap<String, Vec<String>>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh_secs: 300,
            audience: None,
            issuer: None,
            leeway_secs: 60,
            permissions_claim: "permissions".into(),
            permission_pattern: DEFAULT_PERMISSION_PATTERN.into(),
            subject_claim: "sub".into(),
            system_scopes: vec!["temporal-system".into(), "system".into()],
            tls_identities: BTreeMap::new(),
        }
    }
}

pub(crate) const DEFAULT_PERMISSION_PATTERN: &str = "^(?P<namespace>[^:]+):(?P<role>.+)$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_is_off_with_the_defaults() {
        let config: AuthConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, AuthConfig::default());
        assert!(!config.enabled);
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = serde_json::from_str::<AuthConfig>(r#"{"jwks_uri": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("jwks_uri"), "{err}");
    }

    #[test]
    fn identities_map_to_entries() {
        let config: AuthConfig = serde_json::from_str(
            r#"{"enabled": true, "tls_identities": {"worker-1": ["default:worker"]}}"#,
        )
        .unwrap();
        assert_eq!(config.tls_identities["worker-1"], ["default:worker"]);
    }
}
