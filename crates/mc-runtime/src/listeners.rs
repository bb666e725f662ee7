//! Delivery of events to the host's listeners.
//!
//! Each listener has its own queue and its own thread, so a listener that blocks delays only
//! itself, and a listener that panics is caught, reported in the log, and keeps receiving
//! later events. Events reach every listener in the order the runtime emitted them, which is
//! the order of the requests' steps. What it must not do: hold a lock while calling host code.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use mc_events::Event;

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

struct Slot {
    id: u64,
    wants: Wants,
    queue: mpsc::Sender<Arc<Event>>,
    /// Cleared on removal, so events already queued are not delivered after it.
    active: Arc<AtomicBool>,
}

/// The registered listeners. Cheap to clone; shared by the host API and the controller.
#[derive(Clone, Default)]
pub struct Listeners {
    slots: Arc<Mutex<Vec<Slot>>>,
    next_id: Arc<AtomicU64>,
}

/// Returned by `add_event_listener`; pass it to `remove_event_listener` to stop delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerHandle(u64);

impl Listeners {
    pub fn add(&self, listener: Arc<dyn EventListener>) -> ListenerHandle {
        self.add_slot(Wants::Everything, move |event| {
            listener.on_event_received(event)
        })
    }

    pub fn add_synchronous(&self, handler: Arc<dyn SynchronousEventHandler>) -> ListenerHandle {
        self.add_slot(Wants::PushedOnly, move |event| handler.execute_event(event))
    }

    /// Stops delivery; events already queued for it are dropped (a call already running
    /// finishes). Returns false when the handle was unknown (removed before).
    pub fn remove(&self, handle: ListenerHandle) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let before = slots.len();
        slots.retain(|slot| {
            let keep = slot.id != handle.0;
            if !keep {
                slot.active.store(false, Ordering::Release);
            }
            keep
        });
        slots.len() != before
    }

    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `event` for every listener that wants it. Never blocks on a listener.
    pub fn emit(&self, event: Event) {
        let pushed = !event.is_result();
        let event = Arc::new(event);
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // A listener whose thread is gone is dropped from the list.
        slots.retain(|slot| {
            if slot.wants == Wants::PushedOnly && !pushed {
                return true;
            }
            slot.queue.send(Arc::clone(&event)).is_ok()
        });
    }

    fn add_slot(&self, wants: Wants, deliver: impl Fn(&Event) + Send + 'static) -> ListenerHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, inbox) = mpsc::channel::<Arc<Event>>();
        let active = Arc::new(AtomicBool::new(true));
        let still_active = Arc::clone(&active);
        let spawned = std::thread::Builder::new()
            .name(format!("mc-listener-{id}"))
            .spawn(move || {
                // Ends when the slot is removed (the sender is dropped).
                for event in inbox {
                    if !still_active.load(Ordering::Acquire) {
                        break;
                    }
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
            Ok(_) => {
                self.slots
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Slot {
                        id,
                        wants,
                        queue,
                        active,
                    });
            }
            Err(error) => {
                tracing::error!(%error, "could not start a listener thread; listener not added");
            }
        }
        ListenerHandle(id)
    }
}
