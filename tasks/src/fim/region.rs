//! Editing regions: the parts of a completion prompt that stay put while the user types at one place.
//!
//! A [`Region`] is chosen at the first request at a place: the anchor where the prefix window starts, the
//! packed repository context (with the lines around the cursor left out), and the token reservations of the
//! windows. Later requests at the same place build their prompt from it — the same context, the prefix
//! window from the same anchor to the cursor, a short suffix window — so their token sequences agree with
//! the previous request's up to the cursor, and the engine re-runs only the tokens from the edit on.
//!
//! A region ends (the next request chooses a new one) when the text before the anchor changes, the cursor
//! moves above the anchor or more than [`MOVE_DOWN_LINES`] onto the lines below, the prefix window outgrows
//! its reservation, a file the context quotes changes in the index, or the budget or suffix size changes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use qwen_engine::SpecialToken;

use super::windows::{line_of, line_start, prefix_window, suffix_window};
use super::FimInput;
use crate::Workspace;
use qwen_context::{pack, ContextRequest, PackConfig, PackedContext};
use qwen_index::file_index::content_hash;

/// Share of the budget (after the fixed parts) the prefix window may take.
pub const PREFIX_SHARE: f64 = 0.6;
/// Share of the budget (after the fixed parts) the suffix window may take at most.
pub const SUFFIX_SHARE: f64 = 0.15;
/// The FIM specials after the context: `<|fim_prefix|>`, `<|fim_suffix|>`, `<|fim_middle|>`.
pub(super) const FIM_SPECIALS: usize = 3;
/// Of the prefix window's share, a region starts with `1 / PREFIX_GROWTH` free for what the user types.
const PREFIX_GROWTH: usize = 8;
/// Lines below its first cursor the cursor may move onto (arrow down, an existing line) within a region;
/// the packed context leaves them out so that the prefix window never repeats it.
pub const MOVE_DOWN_LINES: usize = 3;
/// Regions remembered (documents × layouts).
const REGIONS_KEPT: usize = 32;

/// The pinned parts of one document's prompt; see the module documentation. Immutable once chosen.
#[derive(Debug)]
pub(crate) struct Region {
    /// The budget it was laid out for.
    pub budget: usize,
    /// The suffix window's cap asked for (`completion.suffixTokens`).
    pub suffix_asked: usize,
    /// The suffix window's cap, in tokens.
    pub suffix_cap: usize,
    /// Tokens of the current path line and the FIM specials.
    pub fixed: usize,
    /// Byte where the prefix window starts (in the text at the first request; valid while `before` holds).
    anchor: usize,
    /// Hash of the text before the anchor.
    before: u64,
    /// Lines after the first request's cursor.
    lines_after: usize,
    /// Tokens the prefix window may reach.
    pub prefix_cap: usize,
    /// The packed context (`None` outside the workspace or when not even its header fits).
    pub context: Option<Arc<PackedContext>>,
    /// The other files the context quotes, with their content hashes when packed.
    quoted: Vec<(Arc<str>, u64)>,
}

fn lines_in(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

impl Region {
    /// Lays out a region for the request in `input`: the prefix window up to all but its growth share, the
    /// suffix window, and the context in what is left. Returns it with the request's prefix window (start,
    /// tokens).
    pub fn new(
        workspace: &Workspace,
        input: &FimInput<'_>,
        budget: usize,
    ) -> (Region, (usize, usize)) {
        let _span = tracing::debug_span!("completion_region", budget).entered();
        let (text, offset) = (input.text, input.offset);
        let path_line = format!("{}{}\n", SpecialToken::FileSep.text(), input.display_path);
        let fixed = workspace.count_tokens(&path_line) + FIM_SPECIALS;
        let available = budget.saturating_sub(fixed);
        let prefix_cap = (available as f64 * PREFIX_SHARE) as usize;
        let suffix_cap = input
            .suffix_tokens
            .min((available as f64 * SUFFIX_SHARE) as usize);
        let growth = prefix_cap / PREFIX_GROWTH;
        let (anchor, entry_tokens) = prefix_window(workspace, text, offset, prefix_cap - growth);
        let prefix_cap = prefix_cap.min(entry_tokens + growth);
        let (suffix_end, _) = suffix_window(workspace, text, offset, suffix_cap);
        let context_budget = available.saturating_sub(prefix_cap + suffix_cap);
        let context = input.relative.map(|relative| {
            let cursor_line = line_of(text, offset);
            let request = ContextRequest {
                path: Arc::from(relative),
                cursor_line,
                cursor_column: (offset - line_start(text, offset)) as u32,
                selection: None,
                instruction: None,
                budget: context_budget,
            };
            // The packer leaves out the lines the windows may send while the region lasts.
            let config = PackConfig {
                cursor_window_before: cursor_line - line_of(text, anchor),
                cursor_window_after: line_of(text, suffix_end.saturating_sub(1).max(offset))
                    - cursor_line
                    + MOVE_DOWN_LINES as u32,
                ..PackConfig::default()
            };
            pack(
                input.snapshot,
                &request,
                &config,
                workspace.token_counter(),
                workspace.token_cache(),
            )
        });
        let context = context.filter(|c| c.header_tokens > 0);
        let quoted = context
            .iter()
            .flat_map(|c| &c.items)
            .filter(|item| Some(&*item.path) != input.relative)
            .filter_map(|item| {
                let file = input.snapshot.file(&item.path)?;
                Some((item.path.clone(), file.hash))
            })
            .collect();
        let region = Region {
            budget,
            suffix_asked: input.suffix_tokens,
            suffix_cap,
            fixed,
            anchor,
            before: content_hash(&text[..anchor]),
            lines_after: lines_in(&text[offset..]),
            prefix_cap,
            context: context.map(Arc::new),
            quoted,
        };
        (region, (anchor, entry_tokens))
    }

    /// The prefix window `[anchor, cursor)` and its tokens, if the request in `input` is still in this region.
    pub fn prefix_for(
        &self,
        workspace: &Workspace,
        input: &FimInput<'_>,
    ) -> Option<(usize, usize)> {
        let (text, offset) = (input.text, input.offset);
        let anchor = self.anchor;
        if anchor > offset || !text.is_char_boundary(anchor) {
            return None;
        }
        if content_hash(&text[..anchor]) != self.before
            || lines_in(&text[offset..]) + MOVE_DOWN_LINES < self.lines_after
        {
            return None;
        }
        let quoted_unchanged = self.quoted.iter().all(|(path, hash)| {
            input
                .snapshot
                .file(path)
                .is_some_and(|file| file.hash == *hash)
        });
        if !quoted_unchanged {
            return None;
        }
        let tokens = workspace.token_counter().count(&text[anchor..offset]);
        (tokens <= self.prefix_cap).then_some((anchor, tokens))
    }
}

/// Which prompt of a document a region belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// The prompt of the configured budget.
    Full,
    /// A smaller prompt, sized to the measured prefill speed, for when the full one is not in the cache.
    Fast,
}

/// A remembered region: (document, layout) and the region.
type Entry = ((String, Layout), Arc<Region>);

/// The regions of recently completed documents, most recently used first.
#[derive(Debug, Default)]
pub(crate) struct Regions {
    entries: Mutex<VecDeque<Entry>>,
}

impl Regions {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Entry>> {
        // Every critical section is one lookup or insert of whole values.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The region of `document`'s `layout`, if one was chosen.
    pub fn get(&self, document: &str, layout: Layout) -> Option<Arc<Region>> {
        let mut entries = self.lock();
        let at = entries
            .iter()
            .position(|((d, l), _)| d == document && *l == layout)?;
        let entry = entries.remove(at)?;
        let region = entry.1.clone();
        entries.push_front(entry);
        Some(region)
    }

    /// Remembers `region` as `document`'s `layout` region.
    pub fn put(&self, document: &str, layout: Layout, region: Arc<Region>) {
        let mut entries = self.lock();
        entries.retain(|((d, l), _)| !(d == document && *l == layout));
        entries.push_front(((document.to_string(), layout), region));
        entries.truncate(REGIONS_KEPT);
    }

    /// Forgets every region.
    pub fn clear(&self) {
        self.lock().clear();
    }
}
