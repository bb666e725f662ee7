//! The runtime behind an `mc_runtime*`: the controller, the thread that calls result callbacks,
//! and the host's listeners with the guarantees the header promises (a removed listener is
//! never called again once `mc_runtime_remove_listener` returns, apart from a call running at
//! that moment when it was removed from inside a callback; every accepted post gets exactly
//! one result callback, before `mc_runtime_free` returns). No lock of ours is held while host
//! code runs, and nothing waits for a callback from inside a callback.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use mc_events::Event;
use mc_runtime::{ListenerHandle, MasterController, RuntimeConfig};

/// A C function called with a JSON text and the host's `user_data`.
pub(crate) type RawCallback = unsafe extern "C" fn(*const c_char, *mut c_void);

/// The host's `user_data`: opaque to us, handed back on the callback's thread. The header
/// tells the host it must be usable from those threads.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: we never dereference it; the header's thread rules make the host responsible for
// what its callback does with it on the runtime's threads.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

/// A host callback and its user data.
#[derive(Clone, Copy)]
pub(crate) struct HostFn {
    callback: RawCallback,
    user_data: UserData,
}

impl HostFn {
    pub(crate) fn new(callback: RawCallback, user_data: *mut c_void) -> Self {
        Self {
            callback,
            user_data: UserData(user_data),
        }
    }

    /// Calls the host with `event` as JSON, marking this thread as inside a callback.
    fn call(&self, event: &Event, listener: Option<u64>) {
        let Some(json) = json_cstring(event) else {
            return;
        };
        let _scope = CallbackScope::enter(listener);
        // SAFETY: the host gave us this function pointer for exactly this signature; the
        // string lives until the call returns, as the header says.
        unsafe { (self.callback)(json.as_ptr(), self.user_data.0) }
    }
}

/// An event's JSON as a C string. JSON escapes NUL, so this fails only on a bug.
pub(crate) fn json_cstring(event: &Event) -> Option<CString> {
    CString::new(event.to_json()).ok()
}

thread_local! {
    /// Some(listener id, or 0 for a result callback) while this thread runs host code.
    static IN_CALLBACK: Cell<Option<u64>> = const { Cell::new(None) };
}

struct CallbackScope {
    previous: Option<u64>,
}

impl CallbackScope {
    fn enter(listener: Option<u64>) -> Self {
        let previous = IN_CALLBACK.with(|c| c.replace(Some(listener.unwrap_or(0))));
        Self { previous }
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        IN_CALLBACK.with(|c| c.set(self.previous));
    }
}

/// Whether the calling thread is inside one of our callbacks.
pub(crate) fn in_callback() -> bool {
    IN_CALLBACK.with(Cell::get).is_some()
}

/// One host listener. No lock is held while the host's function runs: a callback may remove
/// any listener (itself, another one that is running right now) without waiting on anything.
struct HostListener {
    id: u64,
    state: Mutex<ListenerState>,
    /// Signalled when a call of this listener returns.
    call_returned: Condvar,
}

struct ListenerState {
    /// None once removed: no call starts after that.
    target: Option<HostFn>,
    /// A call of the host's function is running now.
    calling: bool,
}

impl HostListener {
    fn new(id: u64, host: HostFn) -> Self {
        Self {
            id,
            state: Mutex::new(ListenerState {
                target: Some(host),
                calling: false,
            }),
            call_returned: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ListenerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deliver(&self, event: &Event) {
        let host = {
            let mut state = self.lock();
            let Some(host) = state.target else {
                return;
            };
            state.calling = true;
            host
        };
        host.call(event, Some(self.id));
        self.lock().calling = false;
        self.call_returned.notify_all();
    }

    /// No call starts after this. Outside our callbacks it also waits for a call in progress
    /// to return. Inside one of our callbacks it never waits (waiting there can deadlock: two
    /// listeners removing each other, or a listener removing itself): the removed listener's
    /// call running now, if any, finishes and is its last.
    fn detach(&self) {
        let mut state = self.lock();
        state.target = None;
        if in_callback() {
            return;
        }
        while state.calling {
            state = self
                .call_returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct Registered {
    handle: ListenerHandle,
    listener: Arc<HostListener>,
}

/// Counts posts whose result callback has not returned yet.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    idle: Condvar,
}

struct Ticket(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> Ticket {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Ticket(Arc::clone(self))
    }

    fn wait_idle(&self) {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            count = self
                .idle
                .wait(count)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// Why a runtime could not be made.
pub(crate) struct StartFailure(pub String);

pub(crate) struct Host {
    controller: MasterController,
    /// One worker thread, `mc-capi-result`: awaits every posted request and calls its callback.
    results: Option<tokio::runtime::Runtime>,
    in_flight: Arc<InFlight>,
    listeners: Mutex<HashMap<u64, Registered>>,
    next_listener: AtomicU64,
}

impl Host {
    pub(crate) fn start(config: RuntimeConfig) -> Result<Host, StartFailure> {
        let results = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mc-capi-result")
            .build()
            .map_err(|e| {
                StartFailure(format!("the result thread could not be started ({e}): free memory or threads, then retry"))
            })?;
        let controller =
            MasterController::start(config).map_err(|e| StartFailure(e.to_string()))?;
        Ok(Host {
            controller,
            results: Some(results),
            in_flight: Arc::default(),
            listeners: Mutex::default(),
            next_listener: AtomicU64::new(1),
        })
    }

    /// Posts a request; `host` is called once with its result on the `mc-capi-result` thread.
    /// Returns false (and never calls `host`) only when the runtime is being freed.
    pub(crate) fn post(&self, json: String, host: HostFn) -> bool {
        let Some(results) = self.results.as_ref() else {
            return false;
        };
        let ticket = self.in_flight.enter();
        let controller = self.controller.clone();
        results.spawn(async move {
            let event = controller.post_json(&json, None).await;
            drop(controller);
            host.call(&event, None);
            drop(ticket);
        });
        true
    }

    /// Posts a request and waits on this thread for its result.
    pub(crate) fn post_blocking(&self, json: &str, timeout: Option<Duration>) -> Event {
        futures::executor::block_on(self.controller.post_json(json, timeout))
    }

    pub(crate) fn add_listener(&self, host: HostFn) -> u64 {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        let listener = Arc::new(HostListener::new(id, host));
        let delivering = Arc::clone(&listener);
        let handle = self
            .controller
            .add_event_listener(move |event: &Event| delivering.deliver(event));
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Registered { handle, listener });
        id
    }

    pub(crate) fn remove_listener(&self, id: u64) -> bool {
        // Out of the map first, so that the map's lock is not held while waiting for a call
        // in progress (which may itself add or remove listeners).
        let registered = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        let Some(registered) = registered else {
            return false;
        };
        self.controller.remove_event_listener(registered.handle);
        registered.listener.detach();
        true
    }
}

impl Drop for Host {
    /// Stops the actors (requests still running are answered RUNTIME_STOPPED), waits for every
    /// result callback, then detaches the listeners and joins the runtime's thread.
    fn drop(&mut self) {
        self.controller.shutdown();
        self.in_flight.wait_idle();
        if let Some(results) = self.results.take() {
            results.shutdown_timeout(Duration::from_secs(1));
        }
        let registered: Vec<Registered> = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in registered {
            self.controller.remove_event_listener(r.handle);
            r.listener.detach();
        }
    }
}

/// An event's JSON as a string the host owns (freed with `mc_string_free`); NULL only on a bug.
pub(crate) fn into_raw_json(event: &Event) -> *mut c_char {
    json_cstring(event).map_or(std::ptr::null_mut(), CString::into_raw)
}
