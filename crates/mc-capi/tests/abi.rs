//! The promises of the header, called through the C entry points from Rust: misuse statuses,
//! which thread calls back, listener removal (from outside and from inside its own callback),
//! and `mc_runtime_free` with requests in flight and from inside a callback.

use std::ffi::{c_char, c_void, CStr, CString};
use std::net::TcpListener;
use std::ptr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mc_capi::*;

const WAIT: Duration = Duration::from_secs(20);

fn text(ptr: *const c_char) -> String {
    assert!(!ptr.is_null());
    unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_owned()
}

/// Takes (and frees) a string the library returned.
fn owned(ptr: *mut c_char) -> String {
    let s = text(ptr);
    unsafe { mc_string_free(ptr) };
    s
}

fn last_error() -> String {
    owned(mc_last_error_message())
}

fn runtime(config: &str) -> *mut McRuntime {
    let config = CString::new(config).unwrap();
    let mut rt = ptr::null_mut();
    let status = unsafe { mc_runtime_new(config.as_ptr(), &mut rt) };
    assert_eq!(status, MC_OK, "{}", last_error());
    assert!(!rt.is_null());
    rt
}

/// A runtime whose IDP accepts connections and never answers: requests that need it hang.
fn runtime_with_silent_idp() -> (*mut McRuntime, TcpListener) {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let rt = runtime(&format!(r#"{{"serverUrl": "{url}", "memory": true}}"#));
    (rt, silent)
}

fn blocking(rt: *const McRuntime, request: &str) -> String {
    let request = CString::new(request).unwrap();
    owned(unsafe { mc_runtime_post_event_blocking(rt, request.as_ptr(), WAIT.as_millis() as u64) })
}

/// What a callback saw: the JSON and the name of its thread.
type Seen = mpsc::Sender<(String, String)>;

unsafe extern "C" fn record(json: *const c_char, user_data: *mut c_void) {
    let seen = unsafe { &*(user_data as *const Seen) };
    let thread = std::thread::current().name().unwrap_or("").to_owned();
    let _ = seen.send((text(json), thread));
}

fn post(rt: *const McRuntime, request: &str, seen: &Seen) -> i32 {
    let request = CString::new(request).unwrap();
    unsafe {
        mc_runtime_post_event(
            rt,
            request.as_ptr(),
            Some(record),
            seen as *const Seen as *mut c_void,
        )
    }
}

#[test]
fn misuse_is_answered_with_statuses_and_messages() {
    let mut rt = ptr::null_mut();
    assert_eq!(
        unsafe { mc_runtime_new(ptr::null(), &mut rt) },
        MC_ERR_NULL_ARGUMENT
    );
    assert!(last_error().contains("`config_json` is NULL"));
    let config = CString::new(r#"{"serverUrl": "http://127.0.0.1:1", "memory": true}"#).unwrap();
    assert_eq!(
        unsafe { mc_runtime_new(config.as_ptr(), ptr::null_mut()) },
        MC_ERR_NULL_ARGUMENT
    );
    assert!(last_error().contains("`out`"));
    let bad_utf8 = CString::new(vec![b'{', 0xC3, 0x28, b'}']).unwrap();
    assert_eq!(
        unsafe { mc_runtime_new(bad_utf8.as_ptr(), &mut rt) },
        MC_ERR_INVALID_UTF8
    );
    assert!(last_error().contains("offset 1"), "names where");
    let no_store = CString::new(r#"{"serverUrl": "http://127.0.0.1:1"}"#).unwrap();
    assert_eq!(
        unsafe { mc_runtime_new(no_store.as_ptr(), &mut rt) },
        MC_ERR_INVALID_CONFIG
    );
    assert!(rt.is_null());

    let rt = runtime(r#"{"serverUrl": "http://127.0.0.1:1", "memory": true}"#);
    let (tx, _rx) = mpsc::channel::<(String, String)>();
    let request = CString::new(r#"{"type": "GetStateEvent"}"#).unwrap();
    let no_callback = unsafe {
        mc_runtime_post_event(
            rt,
            request.as_ptr(),
            None,
            &tx as *const Seen as *mut c_void,
        )
    };
    assert_eq!(no_callback, MC_ERR_NULL_ARGUMENT);
    assert!(last_error().contains("`callback`"));
    assert_eq!(
        unsafe { mc_runtime_post_event(rt, ptr::null(), Some(record), ptr::null_mut()) },
        MC_ERR_NULL_ARGUMENT
    );
    let answer = owned(unsafe { mc_runtime_post_event_blocking(rt, bad_utf8.as_ptr(), 0) });
    assert!(
        answer.contains(r#""status":"INVALID_PARAMETER""#),
        "{answer}"
    );
    assert!(
        answer.contains("`request_json` is not valid UTF-8"),
        "{answer}"
    );
    assert_eq!(
        unsafe { mc_runtime_add_listener(rt, None, ptr::null_mut()) },
        0
    );
    assert_eq!(
        unsafe { mc_runtime_remove_listener(rt, 12345) },
        MC_ERR_UNKNOWN_LISTENER
    );
    // Before StartEvent only StartEvent is valid: the runtime's own answer comes through.
    let early = blocking(rt, r#"{"type": "GetStateEvent"}"#);
    assert!(early.contains(r#""type":"InvalidStateEvent""#), "{early}");
    unsafe { mc_runtime_free(rt) };
    assert_eq!(text(mc_version()), env!("CARGO_PKG_VERSION"));
}

#[test]
fn results_arrive_once_on_the_result_thread_and_listeners_on_their_own() {
    let rt = runtime(r#"{"serverUrl": "http://127.0.0.1:1", "memory": true}"#);
    let (events_tx, events) = mpsc::channel::<(String, String)>();
    let handle = unsafe {
        mc_runtime_add_listener(rt, Some(record), &events_tx as *const Seen as *mut c_void)
    };
    assert_ne!(handle, 0);
    let (results_tx, results) = mpsc::channel::<(String, String)>();
    assert_eq!(
        post(
            rt,
            r#"{"type": "StartEvent", "requestId": "s-1"}"#,
            &results_tx
        ),
        MC_OK
    );
    let (json, thread) = results.recv_timeout(WAIT).unwrap();
    assert!(json.contains(r#""requestId":"s-1""#), "{json}");
    assert!(
        json.contains(r#""sdkState":"ACTIVATION_REQUIRED""#),
        "{json}"
    );
    assert_eq!(thread, "mc-capi-result");
    let (json, thread) = events.recv_timeout(WAIT).unwrap();
    assert!(json.contains(r#""type":"StartResultEvent""#), "{json}");
    assert!(thread.starts_with("mc-listener-"), "{thread}");

    // An unreadable request is answered through the callback, like any other.
    assert_eq!(post(rt, "{oops", &results_tx), MC_OK);
    let (json, _) = results.recv_timeout(WAIT).unwrap();
    assert!(json.contains(r#""status":"INVALID_PARAMETER""#), "{json}");
    assert!(
        results.recv_timeout(Duration::from_millis(200)).is_err(),
        "one result per post"
    );
    assert_eq!(unsafe { mc_runtime_remove_listener(rt, handle) }, MC_OK);
    unsafe { mc_runtime_free(rt) };
}

/// Sleeps inside the callback, then records that it finished.
unsafe extern "C" fn slow_listener(_json: *const c_char, user_data: *mut c_void) {
    let log = unsafe { &*(user_data as *const Mutex<Vec<&'static str>>) };
    log.lock().unwrap().push("entered");
    std::thread::sleep(Duration::from_millis(300));
    log.lock().unwrap().push("left");
}

#[test]
fn remove_waits_for_a_call_in_progress_and_nothing_comes_after() {
    let rt = runtime(r#"{"serverUrl": "http://127.0.0.1:1", "memory": true}"#);
    let log: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let handle = unsafe {
        mc_runtime_add_listener(rt, Some(slow_listener), Arc::as_ptr(&log) as *mut c_void)
    };
    blocking(rt, r#"{"type": "StartEvent"}"#);
    let deadline = Instant::now() + WAIT;
    while log.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the listener was never called");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The listener is inside its 300 ms call now.
    assert_eq!(unsafe { mc_runtime_remove_listener(rt, handle) }, MC_OK);
    assert_eq!(
        log.lock().unwrap().last(),
        Some(&"left"),
        "remove returned while the callback still ran"
    );
    let calls = log.lock().unwrap().len();
    for _ in 0..3 {
        blocking(rt, r#"{"type": "GetStateEvent"}"#);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(log.lock().unwrap().len(), calls, "called after removal");
    unsafe { mc_runtime_free(rt) };
}

struct SelfRemoving {
    rt: *const McRuntime,
    handle: Mutex<u64>,
    calls: Mutex<u32>,
    status: Mutex<Option<i32>>,
}

unsafe extern "C" fn remove_myself(_json: *const c_char, user_data: *mut c_void) {
    let me = unsafe { &*(user_data as *const SelfRemoving) };
    *me.calls.lock().unwrap() += 1;
    let handle = *me.handle.lock().unwrap();
    let status = unsafe { mc_runtime_remove_listener(me.rt, handle) };
    me.status.lock().unwrap().get_or_insert(status);
}

#[test]
fn a_listener_can_remove_itself_and_that_call_is_its_last() {
    let rt = runtime(r#"{"serverUrl": "http://127.0.0.1:1", "memory": true}"#);
    let me = Box::new(SelfRemoving {
        rt,
        handle: Mutex::new(0),
        calls: Mutex::new(0),
        status: Mutex::new(None),
    });
    {
        // Hold the handle's lock so the first call sees the real handle.
        let mut slot = me.handle.lock().unwrap();
        *slot = unsafe {
            mc_runtime_add_listener(
                rt,
                Some(remove_myself),
                &*me as *const SelfRemoving as *mut c_void,
            )
        };
    }
    blocking(rt, r#"{"type": "StartEvent"}"#);
    for _ in 0..3 {
        blocking(rt, r#"{"type": "GetStateEvent"}"#);
    }
    let deadline = Instant::now() + WAIT;
    while me.status.lock().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the listener was never called");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(*me.status.lock().unwrap(), Some(MC_OK));
    assert_eq!(*me.calls.lock().unwrap(), 1, "called after removing itself");
    unsafe { mc_runtime_free(rt) };
}

#[test]
fn free_answers_requests_in_flight_before_it_returns() {
    let (rt, _silent) = runtime_with_silent_idp();
    blocking(rt, r#"{"type": "StartEvent"}"#);
    let (tx, results) = mpsc::channel::<(String, String)>();
    let enroll = r#"{"type": "EnrollAnonymousUserEvent", "tenantId": "demo",
                     "authenticationMode": "NO", "clientId": "AnonymousUserEnrollment"}"#;
    assert_eq!(post(rt, enroll, &tx), MC_OK);
    std::thread::sleep(Duration::from_millis(200)); // the enrollment waits on the silent IDP
    let started = Instant::now();
    unsafe { mc_runtime_free(rt) };
    assert!(started.elapsed() < Duration::from_secs(10), "free hung");
    let (json, _) = results
        .try_recv()
        .expect("the result callback ran before free returned");
    assert!(json.contains(r#""type":"StatusResultEvent""#), "{json}");
    assert!(json.contains(r#""status":"INTERNAL_ERROR""#), "{json}");
    assert!(results.try_recv().is_err(), "exactly one result");
}

struct FreeInside {
    rt: *mut McRuntime,
    done: mpsc::Sender<()>,
}

unsafe extern "C" fn free_from_callback(_json: *const c_char, user_data: *mut c_void) {
    let me = unsafe { &*(user_data as *const FreeInside) };
    unsafe { mc_runtime_free(me.rt) };
    let _ = me.done.send(());
}

#[test]
fn free_from_inside_a_result_callback_does_not_deadlock() {
    let rt = runtime(r#"{"serverUrl": "http://127.0.0.1:1", "memory": true}"#);
    let (done, returned) = mpsc::channel::<()>();
    let me = Box::new(FreeInside { rt, done });
    let request = CString::new(r#"{"type": "StartEvent"}"#).unwrap();
    let status = unsafe {
        mc_runtime_post_event(
            rt,
            request.as_ptr(),
            Some(free_from_callback),
            &*me as *const FreeInside as *mut c_void,
        )
    };
    assert_eq!(status, MC_OK);
    returned
        .recv_timeout(WAIT)
        .expect("mc_runtime_free returned inside the callback");
    // The teardown finishes on its own thread; give it a moment before `me` goes.
    std::thread::sleep(Duration::from_millis(300));
}

/// Two listeners that each remove the other from inside their callbacks.
struct RemoveEachOther {
    rt: *const McRuntime,
    /// handles[0] is A's, handles[1] is B's; each removes the other.
    handles: Mutex<[u64; 2]>,
    /// How many are inside their first callback; both wait for the other before removing.
    inside: std::sync::atomic::AtomicUsize,
    calls: [std::sync::atomic::AtomicUsize; 2],
    statuses: Mutex<Vec<i32>>,
}

// SAFETY (test): the runtime pointer is only used while the runtime lives.
unsafe impl Send for RemoveEachOther {}
unsafe impl Sync for RemoveEachOther {}

struct Party {
    shared: Arc<RemoveEachOther>,
    me: usize,
}

unsafe extern "C" fn remove_the_other(_json: *const c_char, user_data: *mut c_void) {
    use std::sync::atomic::Ordering;
    let party = unsafe { &*(user_data as *const Party) };
    let shared = &party.shared;
    if shared.calls[party.me].fetch_add(1, Ordering::SeqCst) > 0 {
        return;
    }
    // Both inside their callbacks at once: the situation that used to deadlock.
    shared.inside.fetch_add(1, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while shared.inside.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let other = shared.handles.lock().unwrap()[1 - party.me];
    let status = unsafe { mc_runtime_remove_listener(shared.rt, other) };
    shared.statuses.lock().unwrap().push(status);
}

#[test]
fn two_listeners_removing_each_other_inside_their_callbacks_do_not_hang() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let rt = runtime(r#"{"serverUrl": "http://127.0.0.1:1", "memory": true}"#);
    let shared = Arc::new(RemoveEachOther {
        rt,
        handles: Mutex::new([0, 0]),
        inside: AtomicUsize::new(0),
        calls: [AtomicUsize::new(0), AtomicUsize::new(0)],
        statuses: Mutex::default(),
    });
    let parties: Vec<Box<Party>> = (0..2)
        .map(|me| {
            Box::new(Party {
                shared: Arc::clone(&shared),
                me,
            })
        })
        .collect();
    {
        let mut handles = shared.handles.lock().unwrap();
        for (me, party) in parties.iter().enumerate() {
            handles[me] = unsafe {
                mc_runtime_add_listener(
                    rt,
                    Some(remove_the_other),
                    &**party as *const Party as *mut c_void,
                )
            };
        }
    }
    // The runtime pointer crosses to a watchdog-guarded thread as an address.
    let address = rt as usize;
    let (done, finished) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = address as *const McRuntime;
        blocking(rt, r#"{"type": "StartEvent"}"#);
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.statuses.lock().unwrap().len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..3 {
            blocking(rt, r#"{"type": "GetStateEvent"}"#);
        }
        std::thread::sleep(Duration::from_millis(100));
        let _ = done.send(());
    });
    // A regression hangs the thread above; the test then fails here instead of hanging.
    finished
        .recv_timeout(WAIT)
        .expect("listeners that remove each other inside their callbacks hung");
    let statuses = parties[0].shared.statuses.lock().unwrap().clone();
    assert_eq!(statuses, vec![MC_OK, MC_OK], "both removals returned MC_OK");
    for party in &parties {
        assert_eq!(
            party.shared.calls[party.me].load(Ordering::SeqCst),
            1,
            "a removed listener was called again"
        );
    }
    let started = Instant::now();
    unsafe { mc_runtime_free(rt) };
    assert!(started.elapsed() < Duration::from_secs(10), "free hung");
}

/// Blocks inside the callback until the test lets it go.
struct Blocked {
    entered: mpsc::Sender<()>,
    release: Mutex<mpsc::Receiver<()>>,
    returned: std::sync::atomic::AtomicBool,
}

unsafe extern "C" fn block_until_released(_json: *const c_char, user_data: *mut c_void) {
    let me = unsafe { &*(user_data as *const Blocked) };
    if me.returned.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let _ = me.entered.send(());
    let _ = me.release.lock().unwrap().recv_timeout(WAIT);
    me.returned.store(true, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn free_while_a_listener_is_blocked_returns_only_after_it_returned() {
    use std::sync::atomic::Ordering;
    let rt = runtime(r#"{"serverUrl": "http://127.0.0.1:1", "memory": true}"#);
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let me = Arc::new(Blocked {
        entered: entered_tx,
        release: Mutex::new(release_rx),
        returned: Default::default(),
    });
    let handle = unsafe {
        mc_runtime_add_listener(
            rt,
            Some(block_until_released),
            Arc::as_ptr(&me) as *mut c_void,
        )
    };
    assert_ne!(handle, 0);
    blocking(rt, r#"{"type": "StartEvent"}"#);
    entered.recv_timeout(WAIT).expect("the listener was called");
    let address = rt as usize;
    let (freed_tx, freed) = mpsc::channel();
    let watched = Arc::clone(&me);
    std::thread::spawn(move || {
        unsafe { mc_runtime_free(address as *mut McRuntime) };
        let _ = freed_tx.send(watched.returned.load(Ordering::SeqCst));
    });
    assert!(
        freed.recv_timeout(Duration::from_millis(300)).is_err(),
        "free returned while a listener callback was still running"
    );
    release.send(()).unwrap();
    let callback_had_returned = freed
        .recv_timeout(WAIT)
        .expect("free returned once the callback returned");
    assert!(
        callback_had_returned,
        "free returned before the callback did"
    );
}
