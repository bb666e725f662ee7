//! Delivery of events to the host's callbacks, and which thread calls what.
//!
//! - [`EventListener`]: every event (all results, also of requests posted by others, and every
//!   pushed event). Each listener has its own bounded queue and its own thread
//!   (`mc-listener-N`), so a listener that blocks delays only itself.
//! - [`SynchronousEventHandler`]: the results of the requests posted with
//!   `MasterController::forward_event` and every pushed event, as the MC-SDK's
//!   `executeEvent`. All handlers are called on ONE runtime thread (`mc-sync-handlers`), one
//!   event after the other in the order the runtime emitted them, each event to every handler
//!   before the next event. The thread is not the actors' thread, so a handler may post from
//!   inside the callback, even wait for the result (`futures::executor::block_on(rt.post(..))`):
//!   the runtime goes on meanwhile; only later synchronous deliveries wait.
//!
//! Events reach every callback in the order the runtime emitted them, which is the order of the
//! requests' steps. A callback that panics is caught and stays registered; the other
//! callbacks then receive a `WarningEvent` (errorType `LISTENER`, errorCode `LISTENER_PANICKED`)
//! naming it. A panic on such a warning is not reported again (no loop between two callbacks
//! that both panic).
//!
//! Overflow policy: a queue holds at most `RuntimeConfig::listener_queue_capacity` events (the
//! synchronous handlers share one queue). When it is full, newer events are dropped for that
//! queue only (the runtime and the other listeners go on, and the poster of a request still
//! gets its result from `post_event`, which does not go through listener queues). The listener
//! then receives one `WarningEvent` (errorType `LISTENER`, errorCode `LISTENER_OVERFLOW`)
//! saying how many events it lost, at the place of the gap, followed by the later events. So a
//! slow listener costs bounded memory and loses nothing silently.
//!
//! Pushed by this module on the runtime's behalf: one `FatalErrorEvent` (errorType
//! `COMPONENT`) before the first result that reports COMPONENT_FAILED, and the
//! `RuntimeErrorEvent` (errorType `STORE`) of [`Listeners::store_damage`].
//!
//! What it must not do: hold a lock while calling host code, or ever block the emitter.

use std::collections::{HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use mc_events::{error_code, ErrorReport, Event, RequestId};

/// The queue bound of a listener when the configuration names none.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

/// Most request ids of forwarded requests remembered while they run; beyond it the oldest
/// requests' results are no longer routed to the synchronous handlers (a host that forwards
/// without end while the runtime never answers must not grow memory without bound).
const MAX_FORWARDED_IN_FLIGHT: usize = 65_536;

/// Receives every event the runtime emits: results of every request (also those posted by
/// others) and pushed events. Mirrors the MC-SDK's `EventListener.onEventReceived`. Called on
/// a thread of its own per listener.
pub trait EventListener: Send + Sync + 'static {
    fn on_event_received(&self, event: &Event);
}

/// Receives the results of the requests posted with `forward_event` and the events the runtime
/// pushes on its own. Mirrors the MC-SDK's `SynchronousEventHandler.executeEvent`. Every
/// handler is called on the one `mc-sync-handlers` thread, in emission order.
pub trait SynchronousEventHandler: Send + Sync + 'static {
    fn execute_event(&self, event: &Event);
}

impl<F> EventListener for F
where
    F: Fn(&Event) + Send + Sync + 'static,
{
    fn on_event_received(&self, event: &Event) {
        self(event)
    }
}

/// One event on its way, and the callback it must skip (the one whose panic it reports).
#[derive(Clone)]
struct Delivery {
    event: Arc<Event>,
    skip: Option<u64>,
}

/// The events waiting for one delivery thread, shared by the emitter and that thread.
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct QueueState {
    deliveries: VecDeque<Delivery>,
    /// Events dropped since the last overflow warning was queued or delivered.
    dropped: u64,
    /// Removed: the thread stops without delivering what is queued.
    removed: bool,
    /// The listener list is gone (runtime dropped): the thread delivers what is queued, then stops.
    closed: bool,
}

/// What the delivery thread does next.
enum Next {
    Deliver(Delivery),
    Stop,
}

impl Queue {
    fn new(capacity: usize) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::default(),
            changed: Condvar::new(),
            capacity,
        })
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `delivery`, or counts it as dropped when the queue is full. Never blocks.
    fn push(&self, delivery: Delivery) {
        let mut state = self.lock();
        if state.removed {
            return;
        }
        if state.deliveries.len() >= self.capacity {
            state.dropped += 1;
            return;
        }
        if state.dropped > 0 {
            // Room again: the warning goes first, where the gap is. It may use one place
            // beyond the capacity.
            let dropped = std::mem::take(&mut state.dropped);
            state.deliveries.push_back(overflow_warning(dropped));
        }
        state.deliveries.push_back(delivery);
        drop(state);
        self.changed.notify_one();
    }

    fn set(&self, change: impl FnOnce(&mut QueueState)) {
        change(&mut self.lock());
        self.changed.notify_one();
    }

    /// Waits for the next event to deliver.
    fn next(&self) -> Next {
        let mut state = self.lock();
        loop {
            if state.removed {
                return Next::Stop;
            }
            if let Some(delivery) = state.deliveries.pop_front() {
                return Next::Deliver(delivery);
            }
            if state.dropped > 0 {
                // The queue ran empty after a gap: say so now rather than with the next event.
                let dropped = std::mem::take(&mut state.dropped);
                return Next::Deliver(overflow_warning(dropped));
            }
            if state.closed {
                return Next::Stop;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The WarningEvent a listener gets in place of the events it was too slow to take.
fn overflow_warning(dropped: u64) -> Delivery {
    let mut report = ErrorReport::new(
        "LISTENER",
        error_code::LISTENER_OVERFLOW,
        format!(
            "this listener fell behind and {dropped} event(s) were dropped for it; return from \
             the callback sooner (hand work to another thread) or raise \
             listener_queue_capacity; the results of posted requests also reach their posters"
        ),
    );
    // No one request caused it.
    report.trace_context = Some(crate::trace::fresh());
    Delivery {
        event: Arc::new(Event::WarningEvent(report)),
        skip: None,
    }
}

/// The WarningEvent the other callbacks get when callback `id` panicked on `event`.
fn panic_warning(id: u64, what: &str, event: &Event) -> Event {
    let mut report = ErrorReport::new(
        "LISTENER",
        error_code::LISTENER_PANICKED,
        format!(
            "{what} {id} panicked on {}; it stays registered and gets later events: fix the \
             callback (it must not panic)",
            event.type_name()
        ),
    );
    report.request_id = event.request_id().cloned();
    report.trace_context = event.trace_context().cloned();
    Event::WarningEvent(report)
}

fn is_panic_warning(event: &Event) -> bool {
    matches!(event, Event::WarningEvent(report) if report.error_code == error_code::LISTENER_PANICKED)
}

/// A registered [`EventListener`] and its queue.
struct Slot {
    id: u64,
    queue: Arc<Queue>,
}

impl Drop for Slot {
    /// The listener list is dropped with the runtime: let the thread finish what is queued.
    fn drop(&mut self) {
        self.queue.set(|state| state.closed = true);
    }
}

/// The synchronous handlers and their one shared queue and thread.
#[derive(Default)]
struct Synchronous {
    handlers: Vec<(u64, Arc<dyn SynchronousEventHandler>)>,
    /// Started with the first handler.
    queue: Option<Arc<Queue>>,
    /// Ids of forwarded requests not answered yet: their results go to the handlers.
    forwarded: HashSet<RequestId>,
}

struct Shared {
    slots: Mutex<Vec<Slot>>,
    synchronous: Mutex<Synchronous>,
    next_id: AtomicU64,
    capacity: usize,
    /// One FatalErrorEvent per runtime: after it, the app starts a new one.
    fatal_sent: AtomicBool,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let synchronous = self
            .synchronous
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = &synchronous.queue {
            queue.set(|state| state.closed = true);
        }
    }
}

/// The registered listeners and handlers. Cheap to clone; shared by the host API, the
/// controller and the store's damage observer.
#[derive(Clone)]
pub(crate) struct Listeners {
    shared: Arc<Shared>,
}

impl Default for Listeners {
    fn default() -> Self {
        Self::new(DEFAULT_QUEUE_CAPACITY)
    }
}

/// Returned by `add_event_listener`; pass it to `remove_event_listener` to stop delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerHandle(u64);

impl Listeners {
    /// Listeners whose queues hold at most `capacity` events each (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                slots: Mutex::default(),
                synchronous: Mutex::default(),
                next_id: AtomicU64::new(1),
                capacity: capacity.max(1),
                fatal_sent: AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn add(&self, listener: Arc<dyn EventListener>) -> ListenerHandle {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = Queue::new(self.shared.capacity);
        let inbox = Arc::clone(&queue);
        let shared = Arc::downgrade(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("mc-listener-{id}"))
            .spawn(move || {
                while let Next::Deliver(delivery) = inbox.next() {
                    let event = &delivery.event;
                    let delivered =
                        catch_unwind(AssertUnwindSafe(|| listener.on_event_received(event)));
                    if delivered.is_err() {
                        report_panic(&shared, id, "event listener", event);
                    }
                }
            });
        match spawned {
            Ok(_) => self.slots().push(Slot { id, queue }),
            Err(error) => {
                tracing::error!(%error, "could not start a listener thread; listener not added");
            }
        }
        ListenerHandle(id)
    }

    pub(crate) fn add_synchronous(
        &self,
        handler: Arc<dyn SynchronousEventHandler>,
    ) -> ListenerHandle {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut synchronous = self.synchronous();
        if synchronous.queue.is_none() {
            let queue = Queue::new(self.shared.capacity);
            let inbox = Arc::clone(&queue);
            let shared = Arc::downgrade(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("mc-sync-handlers".into())
                .spawn(move || run_synchronous(&inbox, &shared));
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start the synchronous handler thread; handler not added");
                return ListenerHandle(id);
            }
            synchronous.queue = Some(queue);
        }
        synchronous.handlers.push((id, handler));
        ListenerHandle(id)
    }

    /// Stops delivery; events already queued for it are dropped (a call already running
    /// finishes). Never waits, so it may be called from inside any callback. Returns false
    /// when the handle was unknown (removed before).
    pub(crate) fn remove(&self, handle: ListenerHandle) -> bool {
        let removed = {
            let mut slots = self.slots();
            let index = slots.iter().position(|slot| slot.id == handle.0);
            index.map(|index| slots.remove(index))
        };
        if let Some(slot) = removed {
            slot.queue.set(|state| {
                state.removed = true;
                state.deliveries.clear();
            });
            return true;
        }
        let mut synchronous = self.synchronous();
        let before = synchronous.handlers.len();
        synchronous.handlers.retain(|(id, _)| *id != handle.0);
        synchronous.handlers.len() != before
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots().len() + self.synchronous().handlers.len()
    }

    /// Notes that request `id` was forwarded: its result goes to the synchronous handlers.
    pub(crate) fn expect_forwarded(&self, id: RequestId) {
        let mut synchronous = self.synchronous();
        if synchronous.forwarded.len() < MAX_FORWARDED_IN_FLIGHT {
            synchronous.forwarded.insert(id);
        }
    }

    /// Queues `event` for every callback that wants it. Never blocks on a callback. A result
    /// reporting COMPONENT_FAILED is preceded by the runtime's one FatalErrorEvent.
    pub(crate) fn emit(&self, event: Event) {
        if let Some(fatal) = self.fatal_before(&event) {
            self.deliver(fatal, None);
        }
        self.deliver(event, None);
    }

    /// Pushes the RuntimeErrorEvent (errorType `STORE`) for damage the store found.
    pub(crate) fn store_damage(&self, code: u32, description: String) {
        self.emit(Event::RuntimeErrorEvent(ErrorReport::new(
            "STORE",
            code,
            description,
        )));
    }

    /// Pushes the runtime's one FatalErrorEvent (errorType `COMPONENT`), unless it was sent.
    pub(crate) fn fatal(&self, description: String) {
        if !self.shared.fatal_sent.swap(true, Ordering::SeqCst) {
            self.deliver(
                Event::FatalErrorEvent(ErrorReport::new(
                    "COMPONENT",
                    error_code::COMPONENT_FAILED,
                    description,
                )),
                None,
            );
        }
    }

    fn fatal_before(&self, event: &Event) -> Option<Event> {
        let info = event.result_info()?;
        if info.error_code != error_code::COMPONENT_FAILED
            || self.shared.fatal_sent.swap(true, Ordering::SeqCst)
        {
            return None;
        }
        let mut report = ErrorReport::new(
            "COMPONENT",
            error_code::COMPONENT_FAILED,
            info.error_description.clone(),
        );
        report.request_id = info.request_id.clone();
        report.trace_context = info.trace_context.clone();
        Some(Event::FatalErrorEvent(report))
    }

    /// Queues `event` for every callback but `skip`. The slot lock is held while queueing
    /// (never while calling a callback), so concurrent emitters cannot interleave differently
    /// for different callbacks. A pushed event without a trace context (no request caused
    /// it) gets a fresh random one here.
    fn deliver(&self, mut event: Event, skip: Option<u64>) {
        if !event.is_result() && event.trace_context().is_none() {
            event.set_pushed_trace_context(Some(crate::trace::fresh()));
        }
        let event = Arc::new(event);
        let slots = self.slots();
        for slot in slots.iter().filter(|slot| Some(slot.id) != skip) {
            slot.queue.push(Delivery {
                event: Arc::clone(&event),
                skip: None,
            });
        }
        let mut synchronous = self.synchronous();
        let wanted = if event.is_result() {
            event
                .request_id()
                .is_some_and(|id| synchronous.forwarded.remove(id))
        } else {
            true
        };
        if wanted && !synchronous.handlers.is_empty() {
            if let Some(queue) = &synchronous.queue {
                queue.push(Delivery { event, skip });
            }
        }
        drop(synchronous);
        drop(slots);
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.shared
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn synchronous(&self) -> MutexGuard<'_, Synchronous> {
        self.shared
            .synchronous
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `mc-sync-handlers` thread: each event to every handler registered at that moment, in
/// registration order, then the next event.
fn run_synchronous(inbox: &Queue, shared: &Weak<Shared>) {
    while let Next::Deliver(delivery) = inbox.next() {
        let Some(alive) = shared.upgrade() else {
            return;
        };
        let handlers: Vec<(u64, Arc<dyn SynchronousEventHandler>)> = alive
            .synchronous
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .handlers
            .clone();
        drop(alive);
        let event = &delivery.event;
        for (id, handler) in handlers {
            if Some(id) == delivery.skip {
                continue;
            }
            let delivered = catch_unwind(AssertUnwindSafe(|| handler.execute_event(event)));
            if delivered.is_err() {
                report_panic(shared, id, "synchronous event handler", event);
            }
        }
    }
}

/// Callback `id` panicked on `event`: logged, and a WarningEvent to the other callbacks
/// (unless the event was itself such a warning: two panicking callbacks must not feed each
/// other).
fn report_panic(shared: &Weak<Shared>, id: u64, what: &str, event: &Event) {
    tracing::warn!(
        listener = id,
        event = event.type_name(),
        "a {what} panicked; it stays registered and gets later events"
    );
    if is_panic_warning(event) {
        return;
    }
    if let Some(shared) = shared.upgrade() {
        Listeners { shared }.deliver(panic_warning(id, what, event), Some(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_events::{ResultInfo, StatusResultEvent};
    use std::sync::mpsc;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);

    fn result() -> Event {
        Event::StatusResultEvent(StatusResultEvent::new(ResultInfo::ok()))
    }

    fn warning_count(event: &Event) -> Option<u64> {
        match event {
            Event::WarningEvent(report) if report.error_code == error_code::LISTENER_OVERFLOW => {
                let words: Vec<&str> = report.error_description.split_whitespace().collect();
                let at = words.iter().position(|w| *w == "event(s)")?;
                words.get(at.checked_sub(1)?)?.parse().ok()
            }
            _ => None,
        }
    }

    /// A listener blocked on its first event while 10 more arrive into a queue of 4: it gets
    /// the 4 queued, then one warning for the 6 dropped, then later events again.
    #[test]
    fn a_full_queue_drops_for_that_listener_only_and_says_how_many() {
        let listeners = Listeners::new(4);
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let (seen_tx, seen) = mpsc::channel::<Event>();
        let seen_tx = Mutex::new(seen_tx);
        let first = std::sync::atomic::AtomicBool::new(true);
        listeners.add(Arc::new(move |event: &Event| {
            if first.swap(false, Ordering::SeqCst) {
                let _ = gate.lock().unwrap().recv_timeout(WAIT);
            }
            let _ = seen_tx.lock().unwrap().send(event.clone());
        }));
        let (fast_tx, fast) = mpsc::channel::<Event>();
        let fast_tx = Mutex::new(fast_tx);
        listeners.add(Arc::new(move |event: &Event| {
            let _ = fast_tx.lock().unwrap().send(event.clone());
        }));

        listeners.emit(result());
        // Let the slow listener's thread take the first event and block in it.
        std::thread::sleep(Duration::from_millis(100));
        for _ in 0..10 {
            listeners.emit(result());
        }
        release.send(()).unwrap();
        let mut got = Vec::new();
        for _ in 0..(1 + 4 + 1) {
            got.push(
                seen.recv_timeout(WAIT)
                    .expect("the slow listener gets events"),
            );
        }
        assert!(got[..5].iter().all(|e| e.is_result()), "{got:?}");
        assert_eq!(warning_count(&got[5]), Some(6), "{:?}", got[5]);

        // Still registered: later events arrive, with no second warning.
        listeners.emit(result());
        let later = seen.recv_timeout(WAIT).expect("a later event");
        assert!(later.is_result(), "{later:?}");

        // The other listener was not held up by the slow one: it got all 12, or (when its own
        // thread was not scheduled in time for the burst) a warning for each one it lost.
        let mut accounted = 0;
        while accounted < 12 {
            let event = fast
                .recv_timeout(WAIT)
                .expect("the other listener gets events");
            accounted += warning_count(&event).unwrap_or(1);
        }
        assert_eq!(accounted, 12);
    }

    #[test]
    fn two_listeners_removing_each_other_from_their_callbacks_return() {
        let listeners = Listeners::new(16);
        let handles: Arc<Mutex<Vec<ListenerHandle>>> = Arc::default();
        let (done_tx, done) = mpsc::channel::<bool>();
        for me in 0..2usize {
            let listeners_in = listeners.clone();
            let handles_in = Arc::clone(&handles);
            let done_tx = Mutex::new(done_tx.clone());
            let handle = listeners.add(Arc::new(move |_event: &Event| {
                let other = handles_in.lock().unwrap()[1 - me];
                let removed = listeners_in.remove(other);
                let _ = done_tx.lock().unwrap().send(removed);
            }));
            handles.lock().unwrap().push(handle);
        }
        listeners.emit(result());
        let first = done
            .recv_timeout(WAIT)
            .expect("a removal inside a callback returned");
        assert!(first);
        // The other may have been removed before its call began (then one stays registered),
        // or ran at the same time and removed the first.
        let _ = done.recv_timeout(Duration::from_millis(200));
        assert!(listeners.len() <= 1);
    }
}
