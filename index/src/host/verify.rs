//! The check behind `qwen-ls.debug.verifyIndex`: does the live index (built by incremental changes) equal a
//! fresh walk of the disk with the editor's open documents on top? The same comparison the incremental tests
//! make (`IndexSnapshot::state_dump`), available on a running server so clients' tests can make it too.

use super::{Change, IndexHost};
use crate::IndexError;

/// What [`IndexHost::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexCheck {
    /// Files in the live index.
    pub files: usize,
    /// Files a fresh walk indexes.
    pub fresh_files: usize,
    /// The first line where the two states differ (`None`: they are equal).
    pub first_difference: Option<String>,
}

impl IndexHost {
    /// Re-indexes the root from scratch (no cache), replays the open documents, and compares both states.
    pub fn verify(&self) -> Result<IndexCheck, IndexError> {
        let (mut fresh, _) = IndexHost::load_folders(
            &self.root,
            self.mounts.clone(),
            self.gate.config().clone(),
            None,
        )?;
        for (path, document) in &self.documents {
            if let Some(file) = self.files.get(path) {
                let open = Change::Open {
                    path: path.to_string(),
                    version: document.version,
                    text: file.text.to_string(),
                };
                if let Err(e) = fresh.apply_change(open) {
                    tracing::warn!("verify: {e}");
                }
            }
        }
        let live = self.snapshot().state_dump();
        let expected = fresh.snapshot().state_dump();
        let first_difference = live
            .lines()
            .zip(expected.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(line, (a, b))| format!("line {}: live `{a}`, fresh `{b}`", line + 1))
            .or_else(|| {
                (live.len() != expected.len()).then(|| {
                    format!(
                        "the live state has {} lines, a fresh index {}",
                        live.lines().count(),
                        expected.lines().count()
                    )
                })
            });
        Ok(IndexCheck {
            files: self.files.len(),
            fresh_files: fresh.files.len(),
            first_difference,
        })
    }
}
