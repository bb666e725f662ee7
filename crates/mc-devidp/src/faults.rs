//! Test knobs ([`Faults`]) and request counters ([`Stats`]).
//!
//! Adding a fault: one atomic field, a `set_…`/getter pair, a line in `clear_all`, and the check in
//! the handler it affects. Faults that are not booleans (a delay, a status code, a body size) fit the
//! same shape with an `AtomicU64`/`AtomicU16` where 0 means "off".

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Ways to make the development IDP misbehave on purpose, switched at run time from a test.
/// All are off by default and take effect on the next request.
#[derive(Debug, Default)]
pub struct Faults {
    sign_with_foreign_key: AtomicBool,
    wrong_token_issuer: AtomicBool,
    wrong_discovery_issuer: AtomicBool,
    reject_all_tokens_with_invalid_client: AtomicBool,
}

impl Faults {
    /// Issued tokens are signed by a key that is not in the JWKS (its `kid` is a thumbprint as usual,
    /// just of the wrong key), so a client must refuse them.
    pub fn set_sign_with_foreign_key(&self, on: bool) {
        self.sign_with_foreign_key.store(on, Ordering::SeqCst);
    }
    pub fn sign_with_foreign_key(&self) -> bool {
        self.sign_with_foreign_key.load(Ordering::SeqCst)
    }

    /// Issued tokens carry the `iss` of another issuer (signed by the right key).
    pub fn set_wrong_token_issuer(&self, on: bool) {
        self.wrong_token_issuer.store(on, Ordering::SeqCst);
    }
    pub fn wrong_token_issuer(&self) -> bool {
        self.wrong_token_issuer.load(Ordering::SeqCst)
    }

    /// The discovery document names another `issuer` than the one asked for.
    pub fn set_wrong_discovery_issuer(&self, on: bool) {
        self.wrong_discovery_issuer.store(on, Ordering::SeqCst);
    }
    pub fn wrong_discovery_issuer(&self) -> bool {
        self.wrong_discovery_issuer.load(Ordering::SeqCst)
    }

    /// Every token request is answered 401 `invalid_client`, as if the registration were gone.
    pub fn set_reject_all_tokens_with_invalid_client(&self, on: bool) {
        self.reject_all_tokens_with_invalid_client
            .store(on, Ordering::SeqCst);
    }
    pub fn reject_all_tokens_with_invalid_client(&self) -> bool {
        self.reject_all_tokens_with_invalid_client
            .load(Ordering::SeqCst)
    }

    /// Switches every fault off.
    pub fn clear_all(&self) {
        self.set_sign_with_foreign_key(false);
        self.set_wrong_token_issuer(false);
        self.set_wrong_discovery_issuer(false);
        self.set_reject_all_tokens_with_invalid_client(false);
    }
}

/// Requests each endpoint received (successful or not) since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub discovery: u64,
    pub jwks: u64,
    pub registration: u64,
    pub registration_read: u64,
    pub registration_delete: u64,
    /// Token requests with `grant_type=client_credentials`.
    pub token_client_credentials: u64,
    /// Token requests with the token-exchange grant type.
    pub token_exchange: u64,
    /// Token requests with any other or no grant type, or an unreadable form.
    pub token_other: u64,
    pub echo: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    pub discovery: AtomicU64,
    pub jwks: AtomicU64,
    pub registration: AtomicU64,
    pub registration_read: AtomicU64,
    pub registration_delete: AtomicU64,
    pub token_client_credentials: AtomicU64,
    pub token_exchange: AtomicU64,
    pub token_other: AtomicU64,
    pub echo: AtomicU64,
}

impl StatsCounters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            discovery: read(&self.discovery),
            jwks: read(&self.jwks),
            registration: read(&self.registration),
            registration_read: read(&self.registration_read),
            registration_delete: read(&self.registration_delete),
            token_client_credentials: read(&self.token_client_credentials),
            token_exchange: read(&self.token_exchange),
            token_other: read(&self.token_other),
            echo: read(&self.echo),
        }
    }
}
