//! Tokens already verified. A worker sends the same token with every poll and response;
//! checking its signature each time (an RSA verification) would cost more than the call. A
//! token is kept until it expires, and every key reload forgets them all, so a key taken out
//! of the JWKS stops its tokens at the next refresh.

use crate::jwt::TokenClaims;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// At most this many tokens are kept; past it the table starts over.
const MAX_TOKENS: usize = 10_000;

#[derive(Default)]
pub(crate) struct Verified {
    tokens: Mutex<HashMap<String, TokenClaims>>,
}

impl Verified {
    /// The claims of `token` if it was verified and has not expired since.
    pub fn get(&self, token: &str) -> Option<TokenClaims> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let claims = tokens.get(token)?;
        (now_secs() <= claims.valid_until).then(|| claims.clone())
    }

    pub fn keep(&self, token: &str, claims: &TokenClaims) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.len() >= MAX_TOKENS {
            let now = now_secs();
            tokens.retain(|_, c| now <= c.valid_until);
            if tokens.len() >= MAX_TOKENS {
                tokens.clear();
            }
        }
        tokens.insert(token.to_owned(), claims.clone());
    }

    pub fn forget_all(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::Roles;

    fn claims(valid_until: u64) -> TokenClaims {
        TokenClaims {
            subject: "s".into(),
            roles: Roles::default(),
            valid_until,
        }
    }

    #[test]
    fn a_token_is_kept_until_it_expires_or_the_keys_reload() {
        let verified = Verified::default();
        verified.keep("live", &claims(now_secs() + 60));
        verified.keep("expired", &claims(now_secs() - 1));
        assert!(verified.get("live").is_some());
        assert!(verified.get("expired").is_none());
        assert!(verified.get("never seen").is_none());
        verified.forget_all();
        assert!(verified.get("live").is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let verified = Verified::default();
        for i in 0..MAX_TOKENS + 10 {
            verified.keep(&format!("t{i}"), &claims(now_secs() + 60));
        }
        assert!(verified.tokens.lock().unwrap().len() <= MAX_TOKENS);
    }
}
