//! Which results the listener has already written out.
//!
//! The runtime delivers events to listeners on threads of their own, so `post_event` can return
//! before the listener has printed the result. The console waits here before it shows the next
//! prompt (interactive) or exits (JSON), so no answer is lost or printed after the prompt.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use mc_events::RequestId;
use tokio::sync::Notify;

#[derive(Default)]
pub struct AnsweredRequests {
    /// Results written per request id (a count: a host may reuse an id once it was answered).
    written: Mutex<HashMap<RequestId, usize>>,
    changed: Notify,
}

impl AnsweredRequests {
    /// Called by the listener after it wrote the result of `id`.
    pub fn record(&self, id: &RequestId) {
        {
            let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            *written.entry(id.clone()).or_default() += 1;
        }
        self.changed.notify_waiters();
    }

    /// Waits until a result of `id` was written, and consumes it. False after `timeout`.
    pub async fn wait_for(&self, id: &RequestId, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a record() in between still wakes us.
            changed.as_mut().enable();
            if self.take(id) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.take(id);
            }
        }
    }

    fn take(&self, id: &RequestId) -> bool {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        match written.get_mut(id) {
            Some(count) if *count > 1 => {
                *count -= 1;
                true
            }
            Some(_) => {
                written.remove(id);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn waits_for_a_record_from_another_thread() {
        let answered = Arc::new(AnsweredRequests::default());
        let id = RequestId::new("r1");
        let writer = Arc::clone(&answered);
        let writer_id = id.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            writer.record(&writer_id);
        });
        assert!(answered.wait_for(&id, Duration::from_secs(5)).await);
        // Consumed: a second wait for the same id times out.
        assert!(!answered.wait_for(&id, Duration::from_millis(20)).await);
    }

    #[tokio::test]
    async fn counts_reused_ids() {
        let answered = AnsweredRequests::default();
        let id = RequestId::new("again");
        answered.record(&id);
        answered.record(&id);
        assert!(answered.wait_for(&id, Duration::from_millis(10)).await);
        assert!(answered.wait_for(&id, Duration::from_millis(10)).await);
        assert!(!answered.wait_for(&id, Duration::from_millis(10)).await);
    }
}
