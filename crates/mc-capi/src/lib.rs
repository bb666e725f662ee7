//! mc-capi: a small hand-designed C ABI over mc-runtime, for people who wrap the runtime in a
//! language without UniFFI support (Flutter/Dart FFI, .NET P/Invoke, Go cgo, plain C).
//!
//! Everything crosses as JSON text in the form of `docs/events.md`: create a runtime from a JSON
//! configuration, post a request with a callback and a `user_data` pointer (or wait for it),
//! add and remove listeners, free the strings we hand out, free the runtime. The header
//! `bindings/c/include/mc_runtime.h` is generated from this file by cbindgen (see
//! `tests/header.rs`, which fails when the committed header drifts); its top comment holds the
//! thread rules.
//!
//! Every entry point catches panics (none should happen) and checks its pointers and UTF-8,
//! answering misuse with a status code or an `INVALID_PARAMETER` result, never a crash.
//!
//! What it must not touch: event logic or wire formats (mc-runtime, mc-events), and it never
//! logs: results can hold tokens (`ExchangeIamTokenResultEvent.token`), which go to the host only.

mod config;
mod host;

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use mc_events::{error_code, Event, ResultInfo, StatusResultEvent, StatusType};

use host::{Host, HostFn};

/// Success.
pub const MC_OK: i32 = 0;
/// A pointer argument that must not be NULL was NULL.
pub const MC_ERR_NULL_ARGUMENT: i32 = 1;
/// A string argument was not valid UTF-8.
pub const MC_ERR_INVALID_UTF8: i32 = 2;
/// The configuration JSON could not be used; `mc_last_error_message` says which field.
pub const MC_ERR_INVALID_CONFIG: i32 = 3;
/// The runtime could not start (store, threads, TLS setup); `mc_last_error_message` says why.
pub const MC_ERR_START_FAILED: i32 = 4;
/// `mc_runtime_remove_listener`: no listener has this handle (never added, or removed before).
pub const MC_ERR_UNKNOWN_LISTENER: i32 = 5;
/// The runtime is being freed and accepts nothing more.
pub const MC_ERR_STOPPED: i32 = 6;
/// An internal fault of this library (a bug): the call had no effect.
pub const MC_ERR_INTERNAL: i32 = 7;

/// A running runtime. Opaque: create it with `mc_runtime_new`, free it with `mc_runtime_free`.
pub struct McRuntime {
    host: Host,
}

/// Receives the result of one posted request: `result_json` is the result event in the JSON
/// form of docs/events.md, valid only until the callback returns (copy it to keep it);
/// `user_data` is the pointer given to `mc_runtime_post_event`.
pub type McResultCallback =
    Option<unsafe extern "C" fn(result_json: *const c_char, user_data: *mut c_void)>;

/// Receives every event the runtime emits (results of all requests and pushed events):
/// `event_json` is valid only until the callback returns; `user_data` is the pointer given to
/// `mc_runtime_add_listener`.
pub type McEventCallback =
    Option<unsafe extern "C" fn(event_json: *const c_char, user_data: *mut c_void)>;

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_last_error(message: impl Into<String>) {
    LAST_ERROR.with(|last| *last.borrow_mut() = Some(message.into()));
}

/// A refused call: the status to return and the message `mc_last_error_message` gives.
struct Refusal {
    status: i32,
    message: String,
}

impl Refusal {
    fn new(status: i32, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// Records the message for `mc_last_error_message` and gives the status.
    fn report(self) -> i32 {
        set_last_error(self.message);
        self.status
    }

    /// The same refusal as the result event a JSON-returning call answers with.
    fn into_event(self) -> Event {
        let (status, code) = match self.status {
            MC_ERR_INTERNAL => (StatusType::InternalError, error_code::INTERNAL_ERROR),
            MC_ERR_STOPPED => (StatusType::InternalError, error_code::RUNTIME_STOPPED),
            _ => (StatusType::InvalidParameter, error_code::INVALID_PARAMETER),
        };
        Event::StatusResultEvent(StatusResultEvent::from_info(ResultInfo::error(
            status,
            code,
            self.message,
        )))
    }
}

const PANIC_MESSAGE: &str =
    "internal fault in mc-capi (a bug): the call had no effect; please report it";

/// Runs `body`, turning a panic into `on_panic` so that no unwinding crosses into C.
fn guarded<R>(on_panic: impl FnOnce() -> R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            set_last_error(PANIC_MESSAGE);
            on_panic()
        }
    }
}

/// Reads a NUL-terminated UTF-8 argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that lives for the call.
unsafe fn read_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Refusal> {
    if ptr.is_null() {
        return Err(Refusal::new(
            MC_ERR_NULL_ARGUMENT,
            format!("argument `{name}` is NULL: pass a NUL-terminated UTF-8 string"),
        ));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|e| {
        Refusal::new(
            MC_ERR_INVALID_UTF8,
            format!(
                "argument `{name}` is not valid UTF-8 (bad byte at offset {}): pass UTF-8 text",
                e.valid_up_to()
            ),
        )
    })
}

/// # Safety
/// `rt` is NULL or a pointer from `mc_runtime_new` not yet freed.
unsafe fn runtime<'a>(rt: *const McRuntime) -> Result<&'a McRuntime, Refusal> {
    // SAFETY: the caller promises a live runtime or NULL.
    unsafe { rt.as_ref() }.ok_or_else(|| {
        Refusal::new(
            MC_ERR_NULL_ARGUMENT,
            "argument `rt` is NULL: pass the runtime from mc_runtime_new",
        )
    })
}

/// Creates a runtime from a JSON configuration and stores it in `*out` (set to NULL on
/// failure). Returns `MC_OK`, or an error status with `mc_last_error_message` saying why.
///
/// Configuration fields (unknown fields are refused):
/// - `serverUrl` string, required: the IDP's base URL (Keycloak: without `/realms/...`).
/// - `storeDirectory` string: where enrolled users are kept (created if missing), or
///   `memory` `true`: nothing kept across runs (tests). Exactly one of the two.
/// - `issuerTemplate` string, default `"{server}/realms/{tenant}"`.
/// - `dpop` `"AUTO"` (default) | `"ALWAYS"` | `"NEVER"`.
/// - `httpTimeoutMs` integer, default 15000: limit for each IDP request.
/// - `allowInsecureHttp` boolean, default false (plain http only to loopback).
///
/// The next step is posting `{"type": "StartEvent"}`.
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mc_runtime_new(
    config_json: *const c_char,
    out: *mut *mut McRuntime,
) -> i32 {
    guarded(
        || MC_ERR_INTERNAL,
        || {
            if out.is_null() {
                return Refusal::new(
                    MC_ERR_NULL_ARGUMENT,
                    "argument `out` is NULL: pass the address of an mc_runtime* variable",
                )
                .report();
            }
            // SAFETY: checked non-NULL; the caller promises it is writable.
            unsafe { *out = std::ptr::null_mut() };
            // SAFETY: the caller's promise on `config_json`.
            let json = match unsafe { read_str(config_json, "config_json") } {
                Ok(json) => json,
                Err(refusal) => return refusal.report(),
            };
            let config = match config::parse(json) {
                Ok(config) => config,
                Err(message) => return Refusal::new(MC_ERR_INVALID_CONFIG, message).report(),
            };
            match Host::start(config) {
                Ok(host) => {
                    // SAFETY: as above.
                    unsafe { *out = Box::into_raw(Box::new(McRuntime { host })) };
                    MC_OK
                }
                Err(failure) => Refusal::new(MC_ERR_START_FAILED, failure.0).report(),
            }
        },
    )
}

/// Posts a request (its JSON form, docs/events.md) without waiting. On `MC_OK` the callback is
/// called exactly once, on the runtime's result thread, with the result event; a request that
/// is not valid JSON or misses a field is answered so too (status `INVALID_PARAMETER`). On any
/// other status the callback is never called and `mc_last_error_message` says why.
///
/// # Safety
/// `rt` is a live runtime or NULL; `request_json` is NULL or NUL-terminated; `user_data` is
/// whatever the callback expects, usable from the result thread.
#[no_mangle]
pub unsafe extern "C" fn mc_runtime_post_event(
    rt: *const McRuntime,
    request_json: *const c_char,
    callback: McResultCallback,
    user_data: *mut c_void,
) -> i32 {
    guarded(
        || MC_ERR_INTERNAL,
        || {
            // SAFETY: the caller's promises on `rt` and `request_json`.
            let accepted = unsafe { runtime(rt) }.and_then(|rt| {
                let json = unsafe { read_str(request_json, "request_json") }?;
                let callback = callback.ok_or_else(|| {
                    Refusal::new(
                        MC_ERR_NULL_ARGUMENT,
                        "argument `callback` is NULL: pass a function for the result",
                    )
                })?;
                if rt
                    .host
                    .post(json.to_owned(), HostFn::new(callback, user_data))
                {
                    Ok(())
                } else {
                    Err(Refusal::new(MC_ERR_STOPPED, "the runtime is being freed"))
                }
            });
            match accepted {
                Ok(()) => MC_OK,
                Err(refusal) => refusal.report(),
            }
        },
    )
}

/// Posts a request and waits on the calling thread for its result, at most `timeout_ms`
/// milliseconds (0: no limit; when the wait runs out the answer is the request's result with
/// status `TIMEOUT`, and the request goes on). Returns the result event's JSON, which the
/// caller frees with `mc_string_free`. Misuse (NULL, invalid UTF-8) is answered with a
/// `StatusResultEvent` of status `INVALID_PARAMETER` naming the argument. Returns NULL only if
/// the text could not be allocated.
///
/// # Safety
/// `rt` is a live runtime or NULL; `request_json` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_runtime_post_event_blocking(
    rt: *const McRuntime,
    request_json: *const c_char,
    timeout_ms: u64,
) -> *mut c_char {
    guarded(
        || host::into_raw_json(&Refusal::new(MC_ERR_INTERNAL, PANIC_MESSAGE).into_event()),
        || {
            // SAFETY: the caller's promises on `rt` and `request_json`.
            let answer = unsafe { runtime(rt) }.and_then(|rt| {
                let json = unsafe { read_str(request_json, "request_json") }?;
                let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
                Ok(rt.host.post_blocking(json, timeout))
            });
            let event = answer.unwrap_or_else(Refusal::into_event);
            host::into_raw_json(&event)
        },
    )
}

/// Registers a listener for every event the runtime emits. Returns its handle (never 0), or
/// 0 when it was not added (`mc_last_error_message` says why). Each listener has its own
/// thread; it receives events in the order the runtime emitted them.
///
/// # Safety
/// `rt` is a live runtime or NULL; `user_data` is whatever the callback expects, usable from
/// the listener's thread until the listener is removed or the runtime freed.
#[no_mangle]
pub unsafe extern "C" fn mc_runtime_add_listener(
    rt: *const McRuntime,
    callback: McEventCallback,
    user_data: *mut c_void,
) -> u64 {
    guarded(
        || 0,
        || {
            // SAFETY: the caller's promise on `rt`.
            let added = unsafe { runtime(rt) }.and_then(|rt| {
                let callback = callback.ok_or_else(|| {
                    Refusal::new(
                        MC_ERR_NULL_ARGUMENT,
                        "argument `callback` is NULL: pass a function for the events",
                    )
                })?;
                Ok(rt.host.add_listener(HostFn::new(callback, user_data)))
            });
            added.unwrap_or_else(|refusal| {
                refusal.report();
                0
            })
        },
    )
}

/// Removes a listener. Called outside callbacks: when this returns `MC_OK` the listener's
/// callback is not running and is never called again, so its `user_data` may be freed.
/// Called from inside any callback (the listener's own or another one's) it returns at once
/// without waiting: no call of the removed listener starts afterwards, but one running at that
/// moment (the current call, or one on the removed listener's own thread) finishes and is its
/// last. Returns `MC_ERR_UNKNOWN_LISTENER` for a handle that is not registered.
///
/// # Safety
/// `rt` is a live runtime or NULL.
#[no_mangle]
pub unsafe extern "C" fn mc_runtime_remove_listener(rt: *const McRuntime, handle: u64) -> i32 {
    guarded(
        || MC_ERR_INTERNAL,
        || {
            // SAFETY: the caller's promise on `rt`.
            let removed = unsafe { runtime(rt) }.and_then(|rt| {
                if rt.host.remove_listener(handle) {
                    Ok(())
                } else {
                    Err(Refusal::new(
                        MC_ERR_UNKNOWN_LISTENER,
                        "no listener has this handle: it was removed before, or never added",
                    ))
                }
            });
            match removed {
                Ok(()) => MC_OK,
                Err(refusal) => refusal.report(),
            }
        },
    )
}

/// Stops the runtime and frees it. Requests still running are answered (status
/// `INTERNAL_ERROR`, the runtime stopped); this returns only when no callback of this runtime
/// runs any more (result callbacks and listener calls in progress have returned) and
/// listeners are never called afterwards. Called from inside a callback it cannot wait for
/// that callback: it returns at once and the teardown finishes on a background thread once
/// the callback returns. NULL is ignored.
///
/// # Safety
/// `rt` is NULL or a runtime from `mc_runtime_new`, not used by any other call during or after
/// this one.
#[no_mangle]
pub unsafe extern "C" fn mc_runtime_free(rt: *mut McRuntime) {
    guarded(
        || (),
        || {
            if rt.is_null() {
                return;
            }
            // SAFETY: the caller gives back ownership of a pointer from mc_runtime_new.
            let runtime = unsafe { Box::from_raw(rt) };
            if host::in_callback() {
                // Waiting here for our own callback would never end.
                let spawned = std::thread::Builder::new()
                    .name("mc-capi-free".into())
                    .spawn(move || drop(runtime));
                if spawned.is_err() {
                    set_last_error("the runtime could not be freed from inside a callback (no thread): free it outside callbacks");
                }
            } else {
                drop(runtime);
            }
        },
    )
}

/// Frees a string this library returned (`mc_runtime_post_event_blocking`,
/// `mc_last_error_message`). NULL is ignored. Never pass the strings given to callbacks.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not freed yet.
#[no_mangle]
pub unsafe extern "C" fn mc_string_free(s: *mut c_char) {
    guarded(
        || (),
        || {
            if !s.is_null() {
                // SAFETY: the caller gives back a string made by CString::into_raw.
                drop(unsafe { CString::from_raw(s) });
            }
        },
    )
}

/// The message of the last failed call on this thread (what went wrong and what to do), or
/// NULL when none failed. Free it with `mc_string_free`.
#[no_mangle]
pub extern "C" fn mc_last_error_message() -> *mut c_char {
    guarded(std::ptr::null_mut, || {
        LAST_ERROR
            .with(|last| last.borrow().clone())
            .and_then(|message| CString::new(message).ok())
            .map_or(std::ptr::null_mut(), CString::into_raw)
    })
}

/// The library's version, e.g. "0.1.0": a static string, never freed.
#[no_mangle]
pub extern "C" fn mc_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
