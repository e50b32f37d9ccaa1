//! The queue for the one CPU-bound generation slot: requests first come, first served; warm-ups only when
//! no request waits.
//!
//! A mutex alone is not fair: a thread that just released it often wins it again, so a burst of completion
//! requests could starve an explanation. Tickets are served in order. A waiter whose cancel token fires leaves
//! the queue without ever running (a superseded keystroke costs nothing), and the ticket after it is served.
//!
//! Background work (prefilling a prompt the editor will probably ask for next) takes the slot only while no
//! request is queued or running, and a request that arrives while it runs preempts it: its preemption token is
//! cancelled at once, and the background job stops at its next check and gives the slot back.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use qwen_engine::CancelToken;

/// How often a waiter re-checks its cancel token (cancellation has no way to wake a condvar).
const CANCEL_POLL: Duration = Duration::from_millis(5);

#[derive(Debug, Default)]
struct State {
    next_ticket: u64,
    /// Request tickets waiting or running, in order; the first one holds the slot once no background job
    /// does.
    queued: BTreeSet<u64>,
    /// The preemption token of the background job holding the slot, if one does.
    background: Option<CancelToken>,
}

/// The queue; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct FairQueue {
    state: Mutex<State>,
    changed: Condvar,
}

/// Who holds the slot.
enum Holder {
    Request(u64),
    Background,
}

/// Holding the slot; dropping it lets the next ticket run.
pub(crate) struct Slot<'a> {
    queue: &'a FairQueue,
    holder: Holder,
}

impl FairQueue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (single insert/remove calls).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'s>(&self, state: MutexGuard<'s, State>) -> MutexGuard<'s, State> {
        match self.changed.wait_timeout(state, CANCEL_POLL) {
            Ok((guard, _)) => guard,
            Err(e) => e.into_inner().0,
        }
    }

    /// Waits for the slot in arrival order, preempting a background job that holds it; `None` if `cancel`
    /// fires first.
    pub(crate) fn acquire(&self, cancel: &CancelToken) -> Option<Slot<'_>> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queued.insert(ticket);
        if let Some(background) = &state.background {
            background.cancel();
        }
        loop {
            if cancel.is_cancelled() {
                state.queued.remove(&ticket);
                drop(state);
                self.changed.notify_all();
                return None;
            }
            if state.queued.first() == Some(&ticket) && state.background.is_none() {
                return Some(Slot {
                    queue: self,
                    holder: Holder::Request(ticket),
                });
            }
            state = self.wait(state);
        }
    }

    /// Waits until the slot is free and no request is queued, then takes it for background work that stops
    /// when `preempt` fires (a request arrived); `None` if `cancel` fires first.
    pub(crate) fn acquire_background(
        &self,
        cancel: &CancelToken,
        preempt: &CancelToken,
    ) -> Option<Slot<'_>> {
        let mut state = self.lock();
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            if state.queued.is_empty() && state.background.is_none() {
                state.background = Some(preempt.clone());
                return Some(Slot {
                    queue: self,
                    holder: Holder::Background,
                });
            }
            state = self.wait(state);
        }
    }

    /// Whether background work holds the slot.
    pub(crate) fn background_running(&self) -> bool {
        self.lock().background.is_some()
    }

    /// Requests waiting or running.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().queued.len()
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        match self.holder {
            Holder::Request(ticket) => {
                state.queued.remove(&ticket);
            }
            Holder::Background => state.background = None,
        }
        drop(state);
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

    #[test]
    fn background_work_waits_for_requests_and_a_request_preempts_it() {
        let queue = Arc::new(FairQueue::default());
        let never = CancelToken::new();
        // A request holds the slot: background work waits, however long.
        let request = queue.acquire(&never).expect("free slot");
        let preempt = CancelToken::new();
        let waiting = {
            let (queue, preempt) = (queue.clone(), preempt.clone());
            std::thread::spawn(move || {
                let slot = queue.acquire_background(&CancelToken::new(), &preempt);
                slot.is_some()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !waiting.is_finished(),
            "background work ran while a request held the slot"
        );
        drop(request);
        assert!(waiting.join().expect("thread"));
        // The slot is free again; background work takes it, and a request arriving preempts it.
        let background = queue
            .acquire_background(&never, &preempt)
            .expect("free slot");
        assert!(!preempt.is_cancelled());
        let arriving = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.acquire(&CancelToken::new()).is_some())
        };
        while !preempt.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            !arriving.is_finished(),
            "the request ran before the background job let go"
        );
        drop(background);
        assert!(arriving.join().expect("thread"));
        // A cancelled background waiter gives up.
        let _held = queue.acquire(&never).expect("free slot");
        let cancelled = CancelToken::new();
        cancelled.cancel();
        assert!(queue
            .acquire_background(&cancelled, &CancelToken::new())
            .is_none());
    }
}
