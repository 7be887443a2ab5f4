//! Trust root sets that expire while a test runs.
//!
//! `stella trust pack --expires 8s` resolves the lifetime to an expiry in whole Unix seconds
//! when it packs, and the attestor treats a set as expired only after that second. So a test
//! that needs the set expired waits for the lifetime plus a margin, measured from before the
//! pack.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::runbook::Operator;

/// Time added to the lifetime before a set counts as expired: the rounding to whole seconds,
/// and the attestor's check that the clock is past the expiry second.
const EXPIRY_MARGIN: Duration = Duration::from_millis(1500);

/// A trust root set imported with a short lifetime.
#[derive(Debug, Clone, Copy)]
pub struct ExpiringTrust {
    packed_at: Instant,
    lifetime: Duration,
}

impl ExpiringTrust {
    /// Packs a trust root set of `trusted_root` (version 1, no note keys) that expires
    /// `lifetime` from now, in whole seconds, and imports it.
    ///
    /// # Panics
    ///
    /// Panics with the command output when the pack or the import fails.
    #[track_caller]
    pub fn install(operator: &Operator, trusted_root: &Path, lifetime: Duration) -> ExpiringTrust {
        let packed_at = Instant::now();
        let bundle = operator.trust_pack(
            &operator.scratch("expiring-trust"),
            trusted_root,
            &[],
            1,
            &format!("{}s", lifetime.as_secs()),
        );
        operator.trust_import(&bundle).assert_ok();
        ExpiringTrust {
            packed_at,
            lifetime,
        }
    }

    /// Reports whether the set stays valid for at least `margin` more. A slow machine may have
    /// used up the lifetime during the set-up, so checks before expiry depend on this.
    pub fn valid_for(&self, margin: Duration) -> bool {
        self.packed_at.elapsed() + margin < self.lifetime
    }

    /// Returns the time since the set was packed.
    pub fn age(&self) -> Duration {
        self.packed_at.elapsed()
    }

    /// Sleeps until the attestor treats the set as expired.
    pub fn wait_until_expired(&self) {
        let expired_at = self.packed_at + self.lifetime + EXPIRY_MARGIN;
        if let Some(remaining) = expired_at.checked_duration_since(Instant::now()) {
            thread::sleep(remaining);
        }
    }
}
