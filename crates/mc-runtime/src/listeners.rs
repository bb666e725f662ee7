//! Delivery of events to the host's listeners.
//!
//! Each listener has its own bounded queue and its own thread, so a listener that blocks
//! delays only itself, and a listener that panics is caught, reported in the log, and keeps
//! receiving later events. Events reach every listener in the order the runtime emitted them,
//! which is the order of the requests' steps.
//!
//! Overflow policy: a listener's queue holds at most `RuntimeConfig::listener_queue_capacity`
//! events. When it is full, newer events are dropped for that listener only (the runtime and
//! the other listeners go on, and the poster of a request still gets its result from
//! `post_event`, which does not go through listener queues). The listener then receives one
//! `WarningEvent` (errorType `LISTENER`, errorCode `LISTENER_OVERFLOW`) saying how many events
//! it lost, at the place of the gap, followed by the later events. So a slow listener costs
//! bounded memory and loses nothing silently.
//!
//! What it must not do: hold a lock while calling host code, or ever block the emitter.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use mc_events::{error_code, ErrorReport, Event};

/// The queue bound of a listener when the configuration names none.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

/// Receives every event the runtime emits: results of every request (also those posted by
/// others) and pushed events. Mirrors the MC-SDK's `EventListener.onEventReceived`.
pub trait EventListener: Send + Sync + 'static {
    fn on_event_received(&self, event: &Event);
}

/// Receives the events the runtime pushes on its own (not the results of requests).
/// Mirrors the MC-SDK's `SynchronousEventHandler.executeEvent`.
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

/// Which events a registered callback wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wants {
    Everything,
    PushedOnly,
}

/// The events waiting for one listener, shared by the emitter and the listener's thread.
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct QueueState {
    events: VecDeque<Arc<Event>>,
    /// Events dropped since the last overflow warning was queued or delivered.
    dropped: u64,
    /// Removed: the thread stops without delivering what is queued.
    removed: bool,
    /// The listener list is gone (runtime dropped): the thread delivers what is queued, then stops.
    closed: bool,
}

/// What the listener's thread does next.
enum Next {
    Deliver(Arc<Event>),
    Stop,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event`, or counts it as dropped when the queue is full. Never blocks.
    fn push(&self, event: &Arc<Event>) {
        let mut state = self.lock();
        if state.removed {
            return;
        }
        if state.events.len() >= self.capacity {
            state.dropped += 1;
            return;
        }
        if state.dropped > 0 {
            // Room again: the warning goes first, where the gap is. It may use one place
            // beyond the capacity.
            let dropped = std::mem::take(&mut state.dropped);
            state.events.push_back(Arc::new(overflow_warning(dropped)));
        }
        state.events.push_back(Arc::clone(event));
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
            if let Some(event) = state.events.pop_front() {
                return Next::Deliver(event);
            }
            if state.dropped > 0 {
                // The queue ran empty after a gap: say so now rather than with the next event.
                let dropped = std::mem::take(&mut state.dropped);
                return Next::Deliver(Arc::new(overflow_warning(dropped)));
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
fn overflow_warning(dropped: u64) -> Event {
    Event::WarningEvent(ErrorReport::new(
        "LISTENER",
        error_code::LISTENER_OVERFLOW,
        format!(
            "this listener fell behind and {dropped} event(s) were dropped for it; return from \
             the callback sooner (hand work to another thread) or raise \
             listener_queue_capacity; the results of posted requests also reach their posters"
        ),
    ))
}

struct Slot {
    id: u64,
    wants: Wants,
    queue: Arc<Queue>,
}

impl Drop for Slot {
    /// The listener list is dropped with the runtime: let the thread finish what is queued.
    fn drop(&mut self) {
        self.queue.set(|state| state.closed = true);
    }
}

/// The registered listeners. Cheap to clone; shared by the host API and the controller.
#[derive(Clone)]
pub struct Listeners {
    slots: Arc<Mutex<Vec<Slot>>>,
    next_id: Arc<AtomicU64>,
    capacity: usize,
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
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Arc::default(),
            next_id: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    pub fn add(&self, listener: Arc<dyn EventListener>) -> ListenerHandle {
        self.add_slot(Wants::Everything, move |event| {
            listener.on_event_received(event)
        })
    }

    pub fn add_synchronous(&self, handler: Arc<dyn SynchronousEventHandler>) -> ListenerHandle {
        self.add_slot(Wants::PushedOnly, move |event| handler.execute_event(event))
    }

    /// Stops delivery; events already queued for it are dropped (a call already running
    /// finishes). Never waits, so it may be called from inside any listener. Returns false
    /// when the handle was unknown (removed before).
    pub fn remove(&self, handle: ListenerHandle) -> bool {
        let removed = {
            let mut slots = self.lock();
            let index = slots.iter().position(|slot| slot.id == handle.0);
            index.map(|index| slots.remove(index))
        };
        match removed {
            Some(slot) => {
                slot.queue.set(|state| {
                    state.removed = true;
                    state.events.clear();
                });
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `event` for every listener that wants it. Never blocks on a listener.
    pub fn emit(&self, event: Event) {
        let pushed = !event.is_result();
        let event = Arc::new(event);
        for slot in self.lock().iter() {
            if slot.wants == Wants::PushedOnly && !pushed {
                continue;
            }
            slot.queue.push(&event);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add_slot(&self, wants: Wants, deliver: impl Fn(&Event) + Send + 'static) -> ListenerHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(Queue {
            state: Mutex::default(),
            changed: Condvar::new(),
            capacity: self.capacity,
        });
        let inbox = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("mc-listener-{id}"))
            .spawn(move || {
                while let Next::Deliver(event) = inbox.next() {
                    let delivered = catch_unwind(AssertUnwindSafe(|| deliver(&event)));
                    if delivered.is_err() {
                        tracing::warn!(
                            listener = id,
                            event = event.type_name(),
                            "a listener panicked; it stays registered and gets later events"
                        );
                    }
                }
            });
        match spawned {
            Ok(_) => self.lock().push(Slot { id, wants, queue }),
            Err(error) => {
                tracing::error!(%error, "could not start a listener thread; listener not added");
            }
        }
        ListenerHandle(id)
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
        Event::StatusResultEvent(StatusResultEvent {
            info: ResultInfo::ok(),
        })
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
