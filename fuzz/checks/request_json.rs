//! The JSON request decoder of mc-events (`Request::from_json`, what `post_json` and
//! `event-console --json` use): never panics, and a decoded request re-encodes to JSON that
//! decodes to the same request.

use mc_events::{Event, Request};

/// One input: must not panic, and must hold what the doc above says.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Request::from_json(text) {
        Ok(request) => {
            let encoded = request.to_json();
            let again = Request::from_json(&encoded)
                .unwrap_or_else(|err| panic!("re-encoded request refused: {err}\n{encoded}"));
            assert_eq!(again, request, "round trip changed the request:\n{encoded}");
            assert!(request.validate().is_ok());
        }
        Err(err) => {
            // Every refusal gets an answer the runtime can send, with a message.
            let answer = Event::invalid_request(&err);
            let _ = answer.to_json();
            let _ = err.to_string();
        }
    }
}
