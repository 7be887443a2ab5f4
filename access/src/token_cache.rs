//! A cache of tokens whose signature and claims already verified, so that a client that sends
//! the same token on every call pays for one ECDSA verification, not one per call.
//!
//! An entry is keyed by the SHA-256 of the exact token text, so only byte-identical tokens hit.
//! A hit still checks the expiry and the scope on every call; see [`TokenCache::get`].

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};
use stella_authority::Principal;

/// Maximum number of tokens kept. When the cache is full, expired entries are dropped, and if
/// none has expired the whole cache is cleared. Clearing costs one more verification per token
/// and never lets a token through that validation would reject.
pub(crate) const TOKEN_CACHE_ENTRIES: usize = 4096;

struct Entry {
    principal: Principal,
    /// Validation time of the first successful check, Unix seconds.
    verified_at: i64,
}

/// Verified tokens of one [`crate::Authenticator`].
#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache")
    }
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// Returns the principal of `token` if it verified before and is still within its validity
    /// window at `now` (with `skew_secs` after `exp`, as the validator allows). A clock that
    /// went back before the first check is treated as a miss, so `nbf` is checked again.
    pub(crate) fn get(&self, token: &str, now: i64, skew_secs: u32) -> Option<Principal> {
        let entries = self.lock();
        let entry = entries.get(&key(token))?;
        let unexpired = now < entry.principal.expires_at().saturating_add(i64::from(skew_secs));
        (unexpired && now >= entry.verified_at).then(|| entry.principal.clone())
    }

    /// Stores a token that has just verified at `now`.
    pub(crate) fn insert(&self, token: &str, principal: Principal, now: i64, skew_secs: u32) {
        let mut entries = self.lock();
        if entries.len() >= TOKEN_CACHE_ENTRIES {
            let skew = i64::from(skew_secs);
            entries.retain(|_, entry| now < entry.principal.expires_at().saturating_add(skew));
            if entries.len() >= TOKEN_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key(token), Entry { principal, verified_at: now });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // The map holds only verified entries; a panic elsewhere cannot leave a wrong one.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

