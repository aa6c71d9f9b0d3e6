//! The `jti` replay cache: in memory, per process, bounded.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::AuthError;

/// Remembers `(iss, jti)` pairs until their token can no longer be accepted.
pub(crate) struct ReplayCache {
    capacity: usize,
    /// Key: issuer and jti joined by a NUL; value: the last second the token is acceptable.
    seen: Mutex<HashMap<String, u64>>,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            capacity,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records a first use, or refuses a second one. When full, expired entries are
    /// dropped; if it is still full the token is refused (failing closed) rather than
    /// forgetting a live `jti`.
    pub(crate) fn record(
        &self,
        iss: &str,
        jti: &str,
        valid_until: u64,
        now: u64,
    ) -> Result<(), AuthError> {
        let key = format!("{iss}\0{jti}");
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.get(&key).is_some_and(|&until| until >= now) {
            return Err(AuthError::Replayed);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= self.capacity {
                return Err(AuthError::ReplayCacheFull);
            }
        }
        seen.insert(key, valid_until);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_of_a_live_jti_is_refused() {
        let cache = ReplayCache::new(10);
        assert!(cache.record("i", "a", 100, 50).is_ok());
        assert!(matches!(
            cache.record("i", "a", 100, 60),
            Err(AuthError::Replayed)
        ));
    }

    #[test]
    fn same_jti_from_another_issuer_is_a_different_token() {
        let cache = ReplayCache::new(10);
        assert!(cache.record("i", "a", 100, 50).is_ok());
        assert!(cache.record("j", "a", 100, 50).is_ok());
    }

    #[test]
    fn expired_entries_are_evicted_when_the_cache_is_full() {
        let cache = ReplayCache::new(2);
        assert!(cache.record("i", "a", 10, 5).is_ok());
        assert!(cache.record("i", "b", 100, 5).is_ok());
        assert!(cache.record("i", "c", 100, 50).is_ok());
    }

    #[test]
    fn a_cache_full_of_live_entries_fails_closed() {
        let cache = ReplayCache::new(2);
        assert!(cache.record("i", "a", 100, 5).is_ok());
        assert!(cache.record("i", "b", 100, 5).is_ok());
        assert!(matches!(
            cache.record("i", "c", 100, 6),
            Err(AuthError::ReplayCacheFull)
        ));
    }
}
