//! A fair (first come, first served) queue for the one CPU-bound generation slot.
//!
//! A mutex alone is not fair: a thread that just released it often wins it again, so a burst of completion
//! requests could starve an explanation. Tickets are served in order. A waiter whose cancel token fires leaves
//! the queue without ever running (a superseded keystroke costs nothing), and the ticket after it is served.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use qwen_engine::CancelToken;

/// How often a waiter re-checks its cancel token (cancellation has no way to wake a condvar).
const CANCEL_POLL: Duration = Duration::from_millis(5);

#[derive(Debug, Default)]
struct State {
    next_ticket: u64,
    /// Tickets waiting or running, in order; the first one holds the slot.
    queued: BTreeSet<u64>,
}

/// The queue; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct FairQueue {
    state: Mutex<State>,
    changed: Condvar,
}

/// Holding the slot; dropping it lets the next ticket run.
pub(crate) struct Slot<'a> {
    queue: &'a FairQueue,
    ticket: u64,
}

impl FairQueue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the set inconsistent (single insert/remove calls).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the slot in arrival order; `None` if `cancel` fires first.
    pub(crate) fn acquire(&self, cancel: &CancelToken) -> Option<Slot<'_>> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queued.insert(ticket);
        loop {
            if cancel.is_cancelled() {
                state.queued.remove(&ticket);
                drop(state);
                self.changed.notify_all();
                return None;
            }
            if state.queued.first() == Some(&ticket) {
                return Some(Slot {
                    queue: self,
                    ticket,
                });
            }
            state = match self.changed.wait_timeout(state, CANCEL_POLL) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Requests waiting or running.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().queued.len()
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.queue.lock().queued.remove(&self.ticket);
        self.queue.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn served_in_arrival_order_and_cancelled_waiters_never_run() {
        let queue = Arc::new(FairQueue::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = queue.acquire(&CancelToken::new()).expect("free slot");
        let cancelled = CancelToken::new();
        let mut threads = Vec::new();
        for i in 0..4 {
            let shared = queue.clone();
            let order = order.clone();
            let cancel = if i == 1 {
                cancelled.clone()
            } else {
                CancelToken::new()
            };
            threads.push(std::thread::spawn(move || {
                if let Some(_slot) = shared.acquire(&cancel) {
                    order.lock().expect("lock").push(i);
                }
            }));
            // Make arrival order deterministic.
            while queue.len() < i + 2 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        cancelled.cancel();
        while queue.len() > 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(first);
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(*order.lock().expect("lock"), [0, 2, 3]);
        assert_eq!(queue.len(), 0);
    }
}
