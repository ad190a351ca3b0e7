//! Bearer tokens: the `authorization` value, the token's signature and registered claims,
//! then the subject and roles its claims give.

use crate::keys::{ALGORITHMS, KeySet};
use crate::roles::{EntryReader, Roles, claim_at};
use crate::{AuthConfig, Denied};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde_json::Value;

/// What a verified token says about its bearer.
#[derive(Clone)]
pub(crate) struct TokenClaims {
    pub subject: String,
    pub roles: Roles,
    /// Unix seconds after which the token no longer verifies (`exp` plus the leeway).
    pub valid_until: u64,
}

/// What a token must satisfy and how its claims are read.
pub(crate) struct TokenRules {
    /// One per accepted algorithm: jsonwebtoken takes a token only when every algorithm its
    /// validation lists is of the key's family.
    validations: Vec<(Algorithm, Validation)>,
    audience: Option<String>,
    leeway: u64,
    permissions_claim: String,
    subject_claim: String,
}

/// Why a token was not taken; an unknown key id is told apart because the caller may fetch
/// the keys again.
pub(crate) enum TokenError {
    UnknownKey(String),
    Invalid(String),
}

impl TokenRules {
    pub fn new(config: &AuthConfig) -> Self {
        let mut validation = Validation::new(ALGORITHMS[0]);
        validation.leeway = config.leeway_secs;
        validation.validate_nbf = true;
        // Temporal does not require `exp`; a token that never expires cannot be revoked
        // short of rotating the key, so here it is required.
        let mut required = vec!["exp"];
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Temporal checks `aud` only when an audience is configured; jsonwebtoken would
            // refuse every token carrying one.
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let validations = ALGORITHMS
            .iter()
            .map(|&alg| {
                let mut validation = validation.clone();
                validation.algorithms = vec![alg];
                (alg, validation)
            })
            .collect();
        Self {
            validations,
            audience: config.audience.clone(),
            leeway: config.leeway_secs,
            permissions_claim: config.permissions_claim.clone(),
            subject_claim: config.subject_claim.clone(),
        }
    }

    /// Verifies the token in an `authorization` value and reads its claims.
    pub fn verify(
        &self,
        authorization: &str,
        keys: &[&KeySet],
        entries: &EntryReader,
    ) -> Result<TokenClaims, TokenError> {
        let invalid = |why: String| TokenError::Invalid(why);
        let token = bearer(authorization)
            .ok_or_else(|| invalid("the authorization header is not `Bearer <token>`".into()))?;
        let header = decode_header(token).map_err(|e| invalid(format!("malformed token: {e}")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(invalid(format!(
                "token algorithm {:?} is not accepted (RS256 and ES256 are)",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("malformed token: no `kid` in its header".into()))?;
        let key = keys
            .iter()
            .find_map(|set| set.get(&kid))
            .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
        if key.alg != header.alg {
            return Err(invalid(format!(
                "token algorithm {:?} does not match key {kid:?}, a {:?} key",
                header.alg, key.alg
            )));
        }
        let validation = self
            .validations
            .iter()
            .find_map(|(alg, validation)| (*alg == key.alg).then_some(validation))
            .ok_or_else(|| invalid(format!("no validation for {:?}", key.alg)))?;
        let claims = decode::<Value>(token, &key.key, validation)
            .map_err(|e| invalid(self.explain(e.kind())))?
            .claims;
        let subject = claim_at(&claims, &self.subject_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                invalid(format!(
                    "token has no string `{}` claim to name its subject",
                    self.subject_claim
                ))
            })?;
        // `exp` is required and was just checked, so it is there.
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        Ok(TokenClaims {
            subject: subject.to_owned(),
            roles: entries.roles_from_claim(claim_at(&claims, &self.permissions_claim)),
            valid_until: exp.saturating_add(self.leeway),
        })
    }

    fn explain(&self, kind: &ErrorKind) -> String {
        match kind {
            ErrorKind::ExpiredSignature => "token has expired".into(),
            ErrorKind::ImmatureSignature => "token is not valid yet (nbf)".into(),
            ErrorKind::InvalidAudience => match &self.audience {
                Some(audience) => format!("token audience does not include {audience:?}"),
                None => "token audience is not accepted".into(),
            },
            ErrorKind::InvalidIssuer => "token issuer is not accepted".into(),
            ErrorKind::MissingRequiredClaim(claim) => format!("token has no `{claim}` claim"),
            ErrorKind::InvalidClaimFormat(claim) => format!("token claim `{claim}` is malformed"),
            ErrorKind::InvalidSignature => "token signature does not verify".into(),
            other => format!("invalid token: {other:?}"),
        }
    }
}

/// The token of `Bearer <token>`, the scheme in any case, as Temporal's claim mapper reads it.
fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl From<TokenError> for Denied {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::UnknownKey(kid) => {
                Denied::unauthenticated(format!("token is signed with unknown key {kid:?}"))
            }
            TokenError::Invalid(why) => Denied::unauthenticated(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer("Bearer a.b.c"), Some("a.b.c"));
        assert_eq!(bearer("bearer  a.b.c "), Some("a.b.c"));
        assert_eq!(bearer("Basic dXNlcjpwdw=="), None);
        assert_eq!(bearer("a.b.c"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
