//! The numbers of the security policy, as settings: KDF cost and lockout.

use crate::error::StoreError;

/// The least PBKDF2-HMAC-SHA256 iteration count accepted for new password wraps (OWASP 2023
/// figure for this KDF). Stored wraps with fewer iterations still unlock, and are re-wrapped
/// with the current settings at their next correct unlock.
pub const MIN_PBKDF2_ITERATIONS: u32 = 600_000;

/// Iteration counts above this in a stored record are treated as damage, not as a setting: an
/// altered record must not make one unlock run for hours.
pub(crate) const MAX_STORED_PBKDF2_ITERATIONS: u32 = 100_000_000;

/// Cost of the key derived from a password (PBKDF2-HMAC-SHA256 through `ring::pbkdf2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdfSettings {
    /// Iterations for new wraps. Default and minimum: [`MIN_PBKDF2_ITERATIONS`].
    pub pbkdf2_iterations: u32,
    /// Lets `pbkdf2_iterations` go below the minimum. Set only by [`KdfSettings::for_tests`]
    /// (feature `testing`: a full-cost KDF per test case would make suites take minutes); a
    /// product build cannot set it.
    allow_low_iterations_for_tests: bool,
}

impl Default for KdfSettings {
    fn default() -> Self {
        Self {
            pbkdf2_iterations: MIN_PBKDF2_ITERATIONS,
            allow_low_iterations_for_tests: false,
        }
    }
}

impl KdfSettings {
    /// `pbkdf2_iterations` new wraps use (at least [`MIN_PBKDF2_ITERATIONS`], or the store
    /// refuses to open).
    pub fn new(pbkdf2_iterations: u32) -> Self {
        Self {
            pbkdf2_iterations,
            allow_low_iterations_for_tests: false,
        }
    }

    /// A cheap KDF for tests only (feature `testing`).
    #[cfg(any(test, feature = "testing"))]
    pub fn for_tests(pbkdf2_iterations: u32) -> Self {
        Self {
            pbkdf2_iterations,
            allow_low_iterations_for_tests: true,
        }
    }
}

/// What happens after wrong passwords (mode PASSWORD only; the platform locks biometrics).
///
/// With the defaults: failures 1-4 only count; the 5th locks for 1 min, the 6th for 5 min, the
/// 7th for 15 min, the 8th and 9th for 1 h each; the 10th destroys the wrapped key (blocked).
/// No password is tried while locked, so a locked attempt does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures that start the temporary locks (default 5).
    pub attempts_before_temporary_lock: u32,
    /// Wait after the 1st, 2nd, ... lock, in seconds; the last one repeats (default 60, 300,
    /// 900, 3600). Empty: no temporary lock, only the block.
    pub lock_delays_secs: Vec<u64>,
    /// Consecutive failures that destroy the wrapped key (default 10).
    pub attempts_before_block: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            attempts_before_temporary_lock: 5,
            lock_delays_secs: vec![60, 300, 900, 3600],
            attempts_before_block: 10,
        }
    }
}

impl LockoutPolicy {
    /// The wait imposed after `failed_attempts` consecutive failures, if any.
    pub fn delay_after(&self, failed_attempts: u32) -> Option<u64> {
        let index = failed_attempts.checked_sub(self.attempts_before_temporary_lock)?;
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        self.lock_delays_secs
            .get(index)
            .or(self.lock_delays_secs.last())
            .copied()
    }
}

/// Everything a [`crate::UserStore`] can be tuned with. `Default` is the product policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// Cost of the password KDF for new wraps.
    pub kdf: KdfSettings,
    /// Locks and block after wrong passwords.
    pub lockout: LockoutPolicy,
}

impl StoreSettings {
    /// Refuses settings that would weaken the store or make no sense.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        let reason = if self.kdf.pbkdf2_iterations == 0 {
            "pbkdf2_iterations is 0"
        } else if self.kdf.pbkdf2_iterations < MIN_PBKDF2_ITERATIONS
            && !self.kdf.allow_low_iterations_for_tests
        {
            "pbkdf2_iterations is below 600000 (only tests may lower it)"
        } else if self.kdf.pbkdf2_iterations > MAX_STORED_PBKDF2_ITERATIONS {
            "pbkdf2_iterations is above 100000000"
        } else if self.lockout.attempts_before_block == 0 {
            "attempts_before_block is 0"
        } else if self.lockout.attempts_before_temporary_lock == 0 {
            "attempts_before_temporary_lock is 0"
        } else {
            return Ok(());
        };
        Err(StoreError::InvalidInput { reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_delays_escalate_and_the_last_repeats() {
        let policy = LockoutPolicy::default();
        let delays: Vec<_> = (0..=11).map(|n| policy.delay_after(n)).collect();
        assert_eq!(
            delays,
            [
                None,
                None,
                None,
                None,
                None,
                Some(60),
                Some(300),
                Some(900),
                Some(3600),
                Some(3600),
                Some(3600),
                Some(3600)
            ]
        );
        let none = LockoutPolicy {
            lock_delays_secs: Vec::new(),
            ..LockoutPolicy::default()
        };
        assert_eq!(none.delay_after(7), None);
    }

    #[test]
    fn weak_settings_are_refused_unless_marked_for_tests() {
        assert!(StoreSettings::default().validate().is_ok());
        assert_eq!(StoreSettings::default().kdf.pbkdf2_iterations, 600_000);
        let mut weak = StoreSettings::default();
        weak.kdf.pbkdf2_iterations = 1000;
        assert!(weak.validate().is_err());
        weak.kdf = KdfSettings::for_tests(1000);
        assert!(weak.validate().is_ok());
        weak.kdf = KdfSettings::for_tests(0);
        assert!(weak.validate().is_err());
        let mut no_block = StoreSettings::default();
        no_block.lockout.attempts_before_block = 0;
        assert!(no_block.validate().is_err());
    }
}
