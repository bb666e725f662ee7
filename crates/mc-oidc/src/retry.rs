//! Bounded retries of IDP requests that are safe to repeat.
//!
//! Which failures are retried depends on what the request does ([`Repeatable`]): a GET of
//! public metadata may be repeated after any transient failure; a request the IDP acts on
//! (a token request, a registration DELETE) only when it certainly was not processed: the
//! connection was never made, or the IDP answered "unavailable" (503/429). A registration POST
//! is never retried: a lost answer may hide a client that exists. Timeouts are not retried
//! either: the attempt already used the whole `http_timeout`, and a retry would double the
//! caller's wait.

use std::future::Future;
use std::time::Duration;

use crate::transport::Endpoint;
use crate::OidcError;

/// How often and how long the client retries a request that is safe to repeat. The defaults
/// keep the extra wait of one call under 10 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 turns retrying off.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one, with jitter.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts that the backoff produces.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured. An IDP asking for more is not retried: the caller gets
    /// [`OidcError::Unavailable`] with the IDP's delay.
    pub max_retry_after: Duration,
    /// Most time spent waiting between the attempts of one call, in total.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
            max_total_wait: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }
}

/// What repeating a request can do at the IDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeatable {
    /// A GET of public metadata (discovery, JWKS): repeating it changes nothing.
    Always,
    /// The IDP acts on it (token endpoint, registration DELETE): repeat it only when it was
    /// certainly not processed.
    IfNotProcessed,
}

/// Runs `attempt` until it succeeds, fails in a way that is not retried for `repeatable`, or
/// `policy` is used up. Each attempt builds its request anew (fresh assertion, fresh proof).
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    endpoint: Endpoint,
    repeatable: Repeatable,
    mut attempt: F,
) -> Result<T, OidcError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OidcError>>,
{
    let mut retries_done = 0u32;
    let mut waited = Duration::ZERO;
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(delay) = next_delay(policy, repeatable, &error, retries_done, waited) else {
            return Err(error);
        };
        retries_done += 1;
        tracing::debug!(
            endpoint = endpoint.name(),
            retry = retries_done,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            %error,
            "retrying an IDP request after a transient failure"
        );
        tokio::time::sleep(delay).await;
        waited = waited.saturating_add(delay);
    }
}

/// The wait before the next attempt, or `None` when `error` ends the call.
pub(crate) fn next_delay(
    policy: &RetryPolicy,
    repeatable: Repeatable,
    error: &OidcError,
    retries_done: u32,
    waited: Duration,
) -> Option<Duration> {
    if retries_done >= policy.max_retries {
        return None;
    }
    // The IDP's words (`IdpRefused`) do not change what the error means.
    let error = error.cause();
    let retried = match error {
        // No connection was made: nothing reached the IDP.
        OidcError::NotReachable { .. } => true,
        // The IDP says it did not process the request.
        OidcError::Unavailable { .. } => true,
        // The IDP may have acted on it: only metadata GETs are repeated.
        OidcError::ServerError { .. } | OidcError::ConnectionLost { .. } => {
            repeatable == Repeatable::Always
        }
        _ => false,
    };
    if !retried {
        return None;
    }
    let delay = match error {
        OidcError::Unavailable {
            retry_after_secs: Some(secs),
            ..
        } => {
            let asked = Duration::from_secs(*secs);
            if asked > policy.max_retry_after {
                return None;
            }
            asked
        }
        _ => backoff(policy, retries_done),
    };
    (waited.saturating_add(delay) <= policy.max_total_wait).then_some(delay)
}

/// `initial_backoff · 2^n`, capped at `max_backoff`, then between half and all of it, so
/// devices that failed together do not come back together.
fn backoff(policy: &RetryPolicy, retries_done: u32) -> Duration {
    let factor = 1u32.checked_shl(retries_done.min(16)).unwrap_or(u32::MAX);
    let full = policy
        .initial_backoff
        .saturating_mul(factor)
        .min(policy.max_backoff);
    // Jitter needs no cryptographic randomness: the sub-second clock differs between devices.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let fraction = 0.5 + f64::from(nanos % 1000) / 2000.0;
    // `mul_f64` panics on overflow; a configured backoff near Duration::MAX must not.
    Duration::try_from_secs_f64(full.as_secs_f64() * fraction).unwrap_or(full)
}

/// The delay of a `Retry-After` header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date,
/// in whole seconds (a date in the past is 0). Unreadable: `None`.
pub(crate) fn parse_retry_after(value: &str, local_now: std::time::SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(match at.duration_since(local_now) {
        Ok(ahead) => ahead.as_secs() + u64::from(ahead.subsec_nanos() > 0),
        Err(_) => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(2),
            max_total_wait: Duration::from_secs(3),
        }
    }

    fn not_reachable() -> OidcError {
        OidcError::NotReachable {
            origin: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        }
    }

    #[test]
    fn only_unprocessed_failures_repeat_a_request_the_idp_acts_on() {
        let p = policy();
        let delay = |e: &OidcError, r| next_delay(&p, r, e, 0, Duration::ZERO);
        use Repeatable::*;
        assert!(delay(&not_reachable(), IfNotProcessed).is_some());
        let unavailable = OidcError::Unavailable {
            status: 503,
            retry_after_secs: None,
        };
        assert!(delay(&unavailable, IfNotProcessed).is_some());
        // A 503 whose body said `temporarily_unavailable` is still a 503.
        let said = OidcError::IdpRefused {
            error: Box::new(unavailable.clone()),
            idp_says: "temporarily_unavailable: come back".into(),
        };
        assert!(delay(&said, IfNotProcessed).is_some());
        for maybe_processed in [
            OidcError::ServerError { status: 500 },
            OidcError::ConnectionLost {
                origin: "o".into(),
                reason: "connection reset".into(),
            },
        ] {
            assert_eq!(delay(&maybe_processed, IfNotProcessed), None);
            assert!(delay(&maybe_processed, Always).is_some());
        }
        for never in [
            OidcError::Timeout { origin: "o".into() },
            OidcError::InvalidClient,
            OidcError::AccessDenied,
            OidcError::IdpRefused {
                error: Box::new(OidcError::InvalidGrant),
                idp_says: "invalid_grant".into(),
            },
            OidcError::InvalidResponse("not JSON".into()),
            OidcError::InvalidToken("expired".into()),
        ] {
            assert_eq!(delay(&never, Always), None, "{never:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_cap() {
        let p = policy();
        let asking = |secs| OidcError::Unavailable {
            status: 503,
            retry_after_secs: Some(secs),
        };
        let d = |e: &OidcError| next_delay(&p, Repeatable::IfNotProcessed, e, 0, Duration::ZERO);
        assert_eq!(d(&asking(0)), Some(Duration::ZERO));
        assert_eq!(d(&asking(2)), Some(Duration::from_secs(2)));
        assert_eq!(d(&asking(3)), None, "longer than max_retry_after");
        assert_eq!(d(&asking(u64::MAX)), None);
    }

    #[test]
    fn retries_stop_at_the_count_and_the_total_wait() {
        let p = policy();
        let e = not_reachable();
        assert!(next_delay(&p, Repeatable::Always, &e, 2, Duration::ZERO).is_some());
        assert_eq!(
            next_delay(&p, Repeatable::Always, &e, 3, Duration::ZERO),
            None
        );
        assert_eq!(
            next_delay(&p, Repeatable::Always, &e, 0, Duration::from_millis(2_951)),
            None,
            "the next backoff would pass max_total_wait"
        );
        assert_eq!(
            next_delay(
                &RetryPolicy::none(),
                Repeatable::Always,
                &e,
                0,
                Duration::ZERO
            ),
            None
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = policy();
        for _ in 0..20 {
            let first = backoff(&p, 0);
            assert!((50..=100).contains(&first.as_millis()), "{first:?}");
            let second = backoff(&p, 1);
            assert!((100..=200).contains(&second.as_millis()), "{second:?}");
            let capped = backoff(&p, 30);
            assert!((150..=300).contains(&capped.as_millis()), "{capped:?}");
        }
    }

    #[test]
    fn huge_configured_waits_do_not_panic() {
        let p = RetryPolicy {
            max_retries: u32::MAX,
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            max_retry_after: Duration::MAX,
            max_total_wait: Duration::MAX,
        };
        let e = not_reachable();
        assert!(next_delay(&p, Repeatable::Always, &e, 40, Duration::MAX).is_some());
        assert!(next_delay(&p, Repeatable::Always, &e, 40, Duration::ZERO).is_some());
        let asking = OidcError::Unavailable {
            status: 503,
            retry_after_secs: Some(u64::MAX),
        };
        assert!(next_delay(&p, Repeatable::Always, &asking, 0, Duration::ZERO).is_some());
    }

    #[test]
    fn retry_after_header_forms() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("120", now), Some(120));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(30)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(0),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
