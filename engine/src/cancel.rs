//! `CancelToken`: a cheap, cloneable flag checked between prefill chunks and before every decode step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Cooperative cancellation shared between a request and whoever may cancel it (e.g. a newer keystroke).
///
/// A [`CancelToken::child`] is cancelled when it or any ancestor is: a caller can stop one generation early
/// (e.g. a streaming callback that has seen enough) without cancelling the request's own token.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    /// Flags of the ancestors (nearest last); checked on every `is_cancelled`.
    parents: Vec<Arc<AtomicBool>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new token that observes this one: cancelling the child leaves `self` untouched, cancelling `self`
    /// (or any of its ancestors) cancels the child.
    pub fn child(&self) -> CancelToken {
        let mut parents = self.parents.clone();
        parents.push(self.flag.clone());
        CancelToken {
            flag: Arc::new(AtomicBool::new(false)),
            parents,
        }
    }

    /// Requests cancellation; every clone (and every child) observes it.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was requested, here or on an ancestor.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || self.parents.iter().any(|p| p.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_see_their_parents_but_not_the_reverse() {
        let parent = CancelToken::new();
        let child = parent.child();
        let grandchild = child.child();
        child.cancel();
        assert!(child.is_cancelled() && grandchild.is_cancelled());
        assert!(!parent.is_cancelled());
        let other = parent.child();
        parent.cancel();
        assert!(other.is_cancelled() && parent.clone().is_cancelled());
    }
}
