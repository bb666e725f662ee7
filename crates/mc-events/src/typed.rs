//! The typed pairing of the catalog: every request type names the result type that answers it
//! ([`RequestType::Result`]), so `MasterController::post(ExchangeIamTokenEvent)` returns an
//! `ExchangeIamTokenResultEvent` and the compiler checks the pairing.

use crate::event::*;
use crate::request::{Request, RequestEvent, RequestKind};
use crate::types::{NextAction, StatusType};

/// A request event type and the result event type that answers it.
pub trait RequestType: Into<RequestEvent> + Into<Request> + Send + 'static {
    /// Which request it is.
    const KIND: RequestKind;
    /// The result event that answers it (also for INVALID_PARAMETER, INVALID_STATE, TIMEOUT).
    type Result: ResultType;
}

/// A result event type: one variant of [`Event`].
pub trait ResultType: Into<Event> + Send + 'static + Sized {
    /// The result out of the untyped answer to a request of this result's type. An
    /// `InvalidStateEvent` (the answer the listeners get when a request is refused in the
    /// current state) becomes this result with status INVALID_STATE and the refusal's message.
    /// `Err` gives back an event that answers some other request type.
    // The `Err` is the answer itself, given back whole (never the common path).
    #[allow(clippy::result_large_err)]
    fn from_answer(kind: RequestKind, event: Event) -> Result<Self, Event>;
}

macro_rules! result_types {
    ($($result:ident),* $(,)?) => {
        $(
            impl From<$result> for Event {
                fn from(result: $result) -> Event {
                    Event::$result(result)
                }
            }

            impl ResultType for $result {
                fn from_answer(kind: RequestKind, event: Event) -> Result<Self, Event> {
                    match event.into_result_of(kind) {
                        Event::$result(result) => Ok(result),
                        other => Err(other),
                    }
                }
            }
        )*
    };
}

result_types!(
    StartResultEvent,
    RestartResultEvent,
    StatusResultEvent,
    OfflineLoginResultEvent,
    ExchangeIamTokenResultEvent,
    GetIamAccessTokenClaimsResultEvent,
    ClearIamTokenCacheResultEvent,
    DeleteIamTokenByAudienceResultEvent,
    GetInformationResultEvent,
    DeleteUserResultEvent,
    GetStateResultEvent,
    CreateHttpCommonResultEvent,
);

impl Event {
    /// The answer as the result type of `kind`: an `InvalidStateEvent` becomes that result
    /// with status INVALID_STATE (code INVALID_STATE, the refusal's message, its sdkState);
    /// any other event is returned unchanged.
    pub fn into_result_of(self, kind: RequestKind) -> Event {
        match self {
            Event::InvalidStateEvent(refused) => {
                let mut info = ResultInfo::error(
                    StatusType::InvalidState,
                    crate::error_code::INVALID_STATE,
                    refused.error_message,
                )
                .with_request(refused.request_id, refused.trace_context);
                info.next_action = NextAction::after_refusal(refused.sdk_state, kind);
                Event::failure_in_state(kind, info, refused.sdk_state)
            }
            other => other,
        }
    }
}
