//! `Caches`: what the tasks remember between requests for one model and configuration — the forward cache of
//! shown completions, the editing regions of completion prompts, explanations by function content, and the
//! counter behind completion ids. Clear it when the model or the configuration changes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::complete::ForwardCache;
use super::fim::Regions;

/// Completions remembered for typing through.
const FORWARD_CAPACITY: usize = 32;
/// Explanations remembered.
const EXPLAIN_CAPACITY: usize = 64;

/// Per-model, per-configuration memory of the tasks. `Send + Sync`; share it with an `Arc`.
#[derive(Debug)]
pub struct Caches {
    forward: Mutex<ForwardCache>,
    regions: Regions,
    /// (key, markdown), most recently used first.
    explanations: Mutex<VecDeque<(u64, String)>>,
    next_id: AtomicU64,
}

impl Default for Caches {
    fn default() -> Self {
        Caches::new()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single insert/lookup: a poisoned lock still holds consistent data.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Caches {
    /// Empty caches.
    pub fn new() -> Caches {
        Caches {
            forward: Mutex::new(ForwardCache::new(FORWARD_CAPACITY)),
            regions: Regions::default(),
            explanations: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Forgets every remembered answer (ids keep increasing).
    pub fn clear(&self) {
        lock(&self.forward).clear();
        self.regions.clear();
        lock(&self.explanations).clear();
    }

    /// A fresh completion id (`"c<n>"`), unique for the life of these caches.
    pub fn next_completion_id(&self) -> String {
        format!("c{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn forward(&self) -> MutexGuard<'_, ForwardCache> {
        lock(&self.forward)
    }

    pub(crate) fn regions(&self) -> &Regions {
        &self.regions
    }

    pub(crate) fn explanation(&self, key: u64) -> Option<String> {
        let mut cache = lock(&self.explanations);
        let at = cache.iter().position(|(k, _)| *k == key)?;
        let entry = cache.remove(at)?;
        let markdown = entry.1.clone();
        cache.push_front(entry);
        Some(markdown)
    }

    pub(crate) fn remember_explanation(&self, key: u64, markdown: &str) {
        let mut cache = lock(&self.explanations);
        cache.retain(|(k, _)| *k != key);
        cache.push_front((key, markdown.to_string()));
        cache.truncate(EXPLAIN_CAPACITY);
    }
}
