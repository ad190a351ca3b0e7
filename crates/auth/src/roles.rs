//! Roles, the principal holding them, and how permission entries become roles.

use crate::AuthError;
use regex::Regex;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// What a caller may do in a namespace, or in every namespace as a system role. Each role
/// may do what the roles before it may.
///
/// Temporal's default authorizer orders its roles worker < reader < writer < admin and
/// gives the worker role nothing of its own (its APIs need writer). Here a worker may poll
/// and answer tasks as well as read, so a worker's token need not allow starting or
/// terminating workflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Read,
    Worker,
    Write,
    Admin,
}

impl Role {
    /// The role an entry names, in any case, as Temporal's claim mapper reads it.
    pub fn parse(name: &str) -> Option<Role> {
        match name.to_ascii_lowercase().as_str() {
            "read" => Some(Role::Read),
            "worker" => Some(Role::Worker),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Worker => "worker",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the caller was identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// By a bearer JWT.
    Jwt,
    /// By a verified mTLS client certificate listed in `tls_identities`.
    Tls,
    /// Not at all: authorization is off, or the API is open to everyone.
    Anonymous,
}

impl PrincipalKind {
    /// The name Temporal gives the kind in `Principal.type` ("jwt").
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Jwt => "jwt",
            PrincipalKind::Tls => "mtls",
            PrincipalKind::Anonymous => "anonymous",
        }
    }
}

/// The caller of an authorized call and the roles it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The token's subject, or the certificate identity that matched; empty when anonymous.
    pub name: String,
    pub(crate) roles: Roles,
}

impl Principal {
    pub(crate) fn anonymous(roles: Roles) -> Self {
        Self {
            kind: PrincipalKind::Anonymous,
            name: String::new(),
            roles,
        }
    }

    /// The caller's system role, which applies to every namespace.
    pub fn system_role(&self) -> Option<Role> {
        self.roles.system
    }

    /// The strongest role the caller holds in `namespace`, its system role included.
    pub fn role_in(&self, namespace: &str) -> Option<Role> {
        self.roles.in_namespace(namespace)
    }
}

/// Roles by namespace and system-wide; a namespace keeps the strongest role granted in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Roles {
    pub system: Option<Role>,
    pub namespaces: HashMap<String, Role>,
}

impl Roles {
    pub fn all() -> Self {
        Self {
            system: Some(Role::Admin),
            namespaces: HashMap::new(),
        }
    }

    pub fn in_namespace(&self, namespace: &str) -> Option<Role> {
        self.system.max(self.namespaces.get(namespace).copied())
    }

    fn grant(&mut self, namespace: Option<&str>, role: Role) {
        match namespace {
            None => self.system = self.system.max(Some(role)),
            Some(namespace) => {
                let held = self.namespaces.entry(namespace.to_owned()).or_insert(role);
                *held = (*held).max(role);
            }
        }
    }

    pub fn merge(&mut self, other: &Roles) {
        if let Some(role) = other.system {
            self.grant(None, role);
        }
        for (namespace, role) in &other.namespaces {
            self.grant(Some(namespace), *role);
        }
    }
}

/// Reads permission entries (`namespace:role`, or whatever the pattern says) into roles.
#[derive(Debug)]
pub(crate) struct EntryReader {
    pattern: Regex,
    system_scopes: Vec<String>,
}

impl EntryReader {
    pub fn new(pattern: &str, system_scopes: &[String]) -> Result<Self, AuthError> {
        let pattern = Regex::new(pattern)
            .map_err(|e| AuthError::Config(format!("permission_pattern: {e}")))?;
        for group in ["namespace", "role"] {
            if !pattern.capture_names().flatten().any(|name| name == group) {
                return Err(AuthError::Config(format!(
                    "permission_pattern has no named group `{group}`"
                )));
            }
        }
        Ok(Self {
            pattern,
            system_scopes: system_scopes.to_vec(),
        })
    }

    /// The namespace (None for a system scope) and role of one entry, if it names both.
    pub fn read(&self, entry: &str) -> Option<(Option<String>, Role)> {
        let captures = self.pattern.captures(entry)?;
        let namespace = captures.name("namespace")?.as_str();
        let role = Role::parse(captures.name("role")?.as_str())?;
        if self.system_scopes.iter().any(|scope| scope == namespace) {
            Some((None, role))
        } else {
            Some((Some(namespace.to_owned()), role))
        }
    }

    /// Roles from a claim's value: a list of entries or a string of space-separated ones.
    /// Entries that are not strings, do not match or name no known role are skipped, as
    /// Temporal's claim mapper skips them.
    pub fn roles_from_claim(&self, claim: Option<&Value>) -> Roles {
        let entries: Vec<&str> = match claim {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(text)) => text.split_whitespace().collect(),
            _ => Vec::new(),
        };
        let mut roles = Roles::default();
        for entry in entries {
            match self.read(entry) {
                Some((namespace, role)) => roles.grant(namespace.as_deref(), role),
                None => tracing::debug!(entry, "permission entry ignored"),
            }
        }
        roles
    }

    /// Roles from configured entries, which must all be valid: a typo there is refused.
    pub fn roles_from_config(&self, entries: &[String], owner: &str) -> Result<Roles, AuthError> {
        let mut roles = Roles::default();
        for entry in entries {
            let (namespace, role) = self.read(entry).ok_or_else(|| {
                AuthError::Config(format!(
                    "tls_identities.{owner}: `{entry}` is not a `namespace:role` entry with a role of read, worker, write or admin"
                ))
            })?;
            roles.grant(namespace.as_deref(), role);
        }
        Ok(roles)
    }
}

/// The value at a dotted `path` in `claims`. At each level the longest key that the rest of
/// the path starts with is taken, so keys holding dots (URL-named claims) are found whole.
pub(crate) fn claim_at<'v>(claims: &'v Value, path: &str) -> Option<&'v Value> {
    let object = claims.as_object()?;
    if let Some(value) = object.get(path) {
        return Some(value);
    }
    path.rmatch_indices('.').find_map(|(dot, _)| {
        let inner = object.get(&path[..dot])?;
        claim_at(inner, &path[dot + 1..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scopes() -> Vec<String> {
        vec!["temporal-system".into(), "system".into()]
    }

    #[test]
    fn entries_are_read_as_temporal_reads_them() {
        let reader =
            EntryReader::new(crate::config::DEFAULT_PERMISSION_PATTERN, &scopes()).unwrap();
        let roles = reader.roles_from_claim(Some(&json!([
            "default:write",
            "default:READ",
            "Foo:read",
            "temporal-system:worker",
            "system:read",
            "bar:owner",
            "no-colon",
            7
        ])));
        assert_eq!(roles.system, Some(Role::Worker));
        assert_eq!(roles.namespaces["default"], Role::Write);
        assert_eq!(roles.namespaces["Foo"], Role::Read);
        assert!(
            !roles.namespaces.contains_key("foo"),
            "namespaces are case-sensitive"
        );
        assert_eq!(
            roles.in_namespace("Foo"),
            Some(Role::Worker),
            "the system role is stronger"
        );
        assert!(!roles.namespaces.contains_key("bar"));
        let spaced = reader.roles_from_claim(Some(&json!("a:read b:admin")));
        assert_eq!(spaced.namespaces["b"], Role::Admin);
        assert_eq!(
            reader.roles_from_claim(Some(&json!({"a": 1}))),
            Roles::default()
        );
    }

    #[test]
    fn a_pattern_needs_both_groups() {
        assert!(EntryReader::new("(?P<role>\\w+):(\\w+)", &scopes()).is_err());
        assert!(EntryReader::new("(?P<namespace", &scopes()).is_err());
        let swapped =
            EntryReader::new("^(?P<role>\\w+)@(?P<namespace>[\\w-]+)$", &scopes()).unwrap();
        assert_eq!(
            swapped.read("admin@ns-1"),
            Some((Some("ns-1".into()), Role::Admin))
        );
    }

    #[test]
    fn configured_entries_must_be_valid() {
        let reader =
            EntryReader::new(crate::config::DEFAULT_PERMISSION_PATTERN, &scopes()).unwrap();
        let err = reader
            .roles_from_config(&["default:writer".into()], "worker-1")
            .unwrap_err();
        assert!(err.to_string().contains("worker-1"), "{err}");
    }

    #[test]
    fn claim_paths_reach_nested_and_dotted_keys() {
        let claims = json!({
            "sub": "alice",
            "realm_access": {"roles": ["default:read"]},
            "https://example.com/claims": {"permissions": ["x:write"]},
            "a.b": 1,
            "a": {"b": 2},
        });
        assert_eq!(claim_at(&claims, "sub"), Some(&json!("alice")));
        assert_eq!(
            claim_at(&claims, "realm_access.roles"),
            Some(&json!(["default:read"]))
        );
        assert_eq!(
            claim_at(&claims, "https://example.com/claims.permissions"),
            Some(&json!(["x:write"]))
        );
        assert_eq!(
            claim_at(&claims, "a.b"),
            Some(&json!(1)),
            "the whole key wins"
        );
        assert_eq!(claim_at(&claims, "realm_access.groups"), None);
        assert_eq!(claim_at(&claims, "sub.x"), None);
    }
}
