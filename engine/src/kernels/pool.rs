//! A small persistent thread pool for data-parallel kernel calls. A decode-sized matrix call takes
//! ~50 µs, so waking sleeping threads (futex, ~5–20 µs each) would eat a large share of it: workers
//! spin on an atomic for a short while after each call and only then park on a condition variable.
//!
//! `run(n, f)` calls `f(0..n)` across the caller and the workers. Tasks are split into one contiguous
//! range per thread, each with its own atomic cursor: a thread first works through its own range (so
//! a thread streams one contiguous stretch of a weight matrix, and sees the same rows call after
//! call, which keeps them in its own L2 when they fit), then takes what is left of the others'
//! (dynamic balancing on a machine shared with other work). The caller waits only for workers that
//! actually joined the call: a worker that is descheduled when the call starts does not delay it, it
//! finds the call closed when it wakes up and its range done by the others.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks, by default.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// How long the caller spins waiting for workers still inside a call before it starts yielding.
const WAIT_SPIN: Duration = Duration::from_micros(20);

/// The current call's state word: epoch in the high 32 bits, a "closed" flag, and the number of
/// workers working on the call in the low 31 bits.
const CLOSED: u64 = 1 << 31;
const ACTIVE: u64 = CLOSED - 1;

type Task<'a> = dyn Fn(usize) + Sync + 'a;

struct Shared {
    state: AtomicU64,
    /// The current call's closure, lifetime erased. Written by the dispatcher only while no worker is
    /// joined (the previous call is closed and its active count is zero); read by a worker only after
    /// it joined the current call, which keeps the closure alive until the worker leaves.
    job: UnsafeCell<*const Task<'static>>,
    /// Cursor into each thread's range of tasks.
    cursors: Vec<Cursor>,
    n_tasks: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    spin: Duration,
}

// SAFETY: `job` is only accessed under the state protocol described on the field; everything else is
// atomics or std sync types. The closure behind `job` is `Sync`.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

/// An atomic cursor on its own cache line (the threads hammer their own and, at the end, each other's).
#[repr(align(128))]
struct Cursor(AtomicUsize);

impl Shared {
    /// Runs tasks of thread `me`'s range, then whatever is left of the others', until none are left.
    fn work(&self, me: usize, f: &Task<'_>) {
        let n = self.n_tasks.load(Ordering::Relaxed);
        let parts = self.cursors.len();
        for k in 0..parts {
            let q = (me + k) % parts;
            let (start, end) = (q * n / parts, (q + 1) * n / parts);
            loop {
                let i = start + self.cursors[q].0.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                f(i);
            }
        }
    }
}

/// A fixed set of threads for [`super::Kernels`] calls. `n_threads` counts the calling thread, which
/// always takes part: a pool of 1 runs everything inline.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    dispatch: Mutex<()>,
    epoch: AtomicU64,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.n_threads())
            .finish()
    }
}

impl ThreadPool {
    /// A pool of `n_threads` (at least 1, including the caller) whose idle workers spin for
    /// [`DEFAULT_SPIN`] before parking.
    pub fn new(n_threads: usize) -> std::io::Result<Self> {
        Self::with_spin(n_threads, DEFAULT_SPIN)
    }

    /// A pool whose idle workers spin for `spin` before parking (`Duration::ZERO`: park at once).
    pub fn with_spin(n_threads: usize, spin: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(CLOSED),
            job: UnsafeCell::new(std::ptr::null::<fn(usize)>() as *const Task<'static>),
            cursors: (0..n_threads.max(1))
                .map(|_| Cursor(AtomicUsize::new(0)))
                .collect(),
            n_tasks: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            spin,
        });
        let mut workers = Vec::new();
        for i in 1..n_threads.max(1) {
            let s = Arc::clone(&shared);
            let h = std::thread::Builder::new()
                .name(format!("qwen-kernels-{i}"))
                .spawn(move || worker(&s, i));
            match h {
                Ok(h) => workers.push(h),
                Err(e) => {
                    // Stop the ones already started before reporting.
                    shared.shutdown.store(true, Ordering::SeqCst);
                    drop(shared.lock.lock());
                    shared.wake.notify_all();
                    for w in workers {
                        let _ = w.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(ThreadPool {
            shared,
            workers,
            dispatch: Mutex::new(()),
            epoch: AtomicU64::new(0),
        })
    }

    /// Threads taking part in each call, the caller included.
    pub fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Calls `f(i)` for every `i in 0..n_tasks`, in parallel, and returns when all calls have
    /// returned. A panic in any call is re-raised here after every thread has left `f`.
    pub fn run<F: Fn(usize) + Sync>(&self, n_tasks: usize, f: F) {
        if n_tasks == 0 {
            return;
        }
        if self.workers.is_empty() || n_tasks == 1 {
            (0..n_tasks).for_each(f);
            return;
        }
        // One call at a time per pool (calls from several threads queue here).
        let _guard = self.dispatch.lock().unwrap_or_else(|e| e.into_inner());
        let sh = &*self.shared;
        let task: &Task<'_> = &f;
        // SAFETY: the previous call is closed with no worker joined (we waited for that before
        // returning from it), so no worker reads `job` now. The erased lifetime is sound because this
        // function does not return before every worker that joined this call has left it.
        unsafe {
            *sh.job.get() =
                std::mem::transmute::<*const Task<'_>, *const Task<'static>>(task as *const _);
        }
        for c in &sh.cursors {
            c.0.store(0, Ordering::Relaxed);
        }
        sh.n_tasks.store(n_tasks, Ordering::Relaxed);
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed) + 1;
        sh.state.store(epoch << 32, Ordering::SeqCst);
        if sh.sleepers.load(Ordering::SeqCst) > 0 {
            drop(sh.lock.lock().unwrap_or_else(|e| e.into_inner()));
            sh.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| sh.work(0, task)));
        // Close the call to latecomers and wait for the workers inside it: spin briefly (the usual
        // case is a worker finishing its last task), then yield so that a worker preempted on this
        // core by other processes gets to run. (`spin_loop` is ~140 cycles on recent Intel cores, so
        // the spin is bounded by time, not by count.)
        sh.state.fetch_or(CLOSED, Ordering::AcqRel);
        let start = Instant::now();
        let (mut spins, mut yielding) = (0u32, false);
        while sh.state.load(Ordering::Acquire) & ACTIVE != 0 {
            if yielding {
                std::thread::yield_now();
                continue;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            yielding = spins.is_multiple_of(16) && start.elapsed() >= WAIT_SPIN;
        }
        if let Err(p) = mine {
            sh.panicked.store(false, Ordering::Relaxed);
            resume_unwind(p);
        }
        if sh.panicked.swap(false, Ordering::Relaxed) {
            panic!("a kernel task panicked on a worker thread");
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        drop(self.shared.lock.lock().unwrap_or_else(|e| e.into_inner()));
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(sh: &Shared, me: usize) {
    let mut seen = 0u64;
    loop {
        // Wait for a new epoch: spin, then park.
        let start = Instant::now();
        let mut spins = 0u32;
        let state = loop {
            let s = sh.state.load(Ordering::Acquire);
            if s >> 32 != seen {
                break s;
            }
            if sh.shutdown.load(Ordering::Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            std::hint::spin_loop();
            if spins.is_multiple_of(64) && start.elapsed() >= sh.spin {
                let mut g = sh.lock.lock().unwrap_or_else(|e| e.into_inner());
                sh.sleepers.fetch_add(1, Ordering::SeqCst);
                while sh.state.load(Ordering::SeqCst) >> 32 == seen
                    && !sh.shutdown.load(Ordering::SeqCst)
                {
                    g = sh.wake.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                sh.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
        };
        seen = state >> 32;
        // Join the call unless it is already closed (or superseded).
        let mut s = state;
        let joined = loop {
            if s >> 32 != seen || s & CLOSED != 0 {
                break false;
            }
            match sh
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break true,
                Err(now) => s = now,
            }
        };
        if !joined {
            continue;
        }
        // SAFETY: we joined an open call, so the dispatcher keeps the closure alive until we leave.
        let task = unsafe { &**sh.job.get() };
        if catch_unwind(AssertUnwindSafe(|| sh.work(me, task))).is_err() {
            sh.panicked.store(true, Ordering::Relaxed);
        }
        sh.state.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_task_once() {
        for threads in [1, 2, 3] {
            let pool = ThreadPool::new(threads).unwrap();
            for n in [0usize, 1, 2, 7, 100] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                pool.run(n, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn survives_parking_and_many_calls() {
        let pool = ThreadPool::with_spin(2, Duration::ZERO).unwrap();
        let total = AtomicUsize::new(0);
        for round in 0..200 {
            if round % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            pool.run(4, |i| {
                total.fetch_add(i, Ordering::Relaxed);
            });
        }
        assert_eq!(total.load(Ordering::Relaxed), 200 * 6);
    }

    #[test]
    fn panics_propagate_and_the_pool_lives_on() {
        let pool = ThreadPool::new(2).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(8, |i| {
                if i == 5 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        pool.run(8, |_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 8);
    }
}
