//! W3C trace contexts the runtime makes itself: for a request the host sent without one, and
//! for a pushed event that no request caused (docs/events.md, "Trace context").

use std::sync::atomic::{AtomicU64, Ordering};

use mc_events::TraceContext;

/// Counts fallback ids, should the system's random source ever fail.
static FALLBACK: AtomicU64 = AtomicU64::new(1);

/// A W3C traceparent with random ids (128-bit trace id, 64-bit parent id, never all zero),
/// flags `01`. Should the random source fail, `fallback_prefix` (16 hex digits, random at
/// start) plus a counter keeps it valid and unique.
pub(crate) fn random_traceparent(fallback_prefix: &str) -> String {
    let (trace_id, parent_id) = match mc_jose::random_bytes(24) {
        Ok(mut bytes) if bytes.len() == 24 => {
            let (trace, parent) = bytes.split_at_mut(16);
            for id in [trace, parent] {
                if id.iter().all(|b| *b == 0) {
                    if let Some(last) = id.last_mut() {
                        *last = 1;
                    }
                }
            }
            (hex(&bytes[..16]), hex(&bytes[16..]))
        }
        _ => {
            let n = FALLBACK.fetch_add(1, Ordering::Relaxed).max(1);
            (
                format!("{fallback_prefix:0>16.16}{n:016x}"),
                format!("{n:016x}"),
            )
        }
    };
    format!("00-{trace_id}-{parent_id}-01")
}

/// A fresh trace context for an event no request caused.
pub(crate) fn fresh() -> TraceContext {
    TraceContext::new(random_traceparent("0000000000000000"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn fresh_trace_contexts_are_w3c_valid_and_differ() {
        let a = super::fresh();
        let b = super::fresh();
        assert_ne!(a.traceparent, b.traceparent);
        for tc in [a, b] {
            assert_eq!(tc.validate(), Ok(()), "{}", tc.traceparent);
            let parts: Vec<&str> = tc.traceparent.split('-').collect();
            assert_eq!(parts.len(), 4, "{}", tc.traceparent);
            assert_eq!(parts[0], "00");
            assert_eq!(parts[1].len(), 32);
            assert_eq!(parts[2].len(), 16);
            assert_eq!(parts[3], "01");
            for id in &parts[1..3] {
                assert!(id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                assert!(id.bytes().any(|b| b != b'0'));
            }
        }
    }
}
