//! The completion prompt: Qwen's repository-level fill-in-the-middle format, laid out so that a keystroke
//! re-runs only what changed at the cursor.
//!
//! ```text
//! <|repo_name|>{repo}\n                     ┐ packed repository context (context/), pinned to the editing
//! <|file_sep|>{path}\n{lines}…              ┘ region (region.rs): the same while the user types there
//! <|file_sep|>{current path}\n
//! <|fim_prefix|>{prefix window: from the region's anchor to the cursor}
//! <|fim_suffix|>{suffix window: a few lines}<|fim_middle|>
//! ```
//!
//! Budget (`completion.budget`, measured with the built-in Qwen tokenizer): the fixed specials and the current
//! path first, then the prefix window (whole lines back from the cursor, up to [`PREFIX_SHARE`] of the rest,
//! less a share kept free for typing), then the suffix window (whole lines after it, up to
//! `completion.suffixTokens` and at most [`SUFFIX_SHARE`]), and everything left goes to the packed context,
//! which is told to leave those windows out. Each segment is cut by tokens on its own; the finished prompt is
//! never clipped (clipping the front of a finished prompt is how other servers lose the `<|fim_prefix|>`
//! token).
//!
//! Why this order and these sizes: the engine reuses the KV cache of the longest common token prefix with
//! the previous prompt of the same session. Everything before the cursor stays put within a region, so a
//! keystroke costs the tokens from the edit to the cursor plus the suffix window — which is why the suffix
//! window is short.

mod region;
mod windows;

use std::ops::{Range, RangeInclusive};
use std::sync::Arc;

use qwen_engine::{Prompt, RepoFile};

use super::Workspace;
use qwen_context::PackedContext;
use qwen_index::IndexSnapshot;
pub use region::{Layout, MOVE_DOWN_LINES, PREFIX_SHARE, SUFFIX_SHARE};
pub(crate) use region::{Region, Regions};
use windows::suffix_window;

/// A built completion prompt and what went into it.
#[derive(Debug, Clone)]
pub struct CompletionPrompt {
    /// The prompt pieces (specials by name: code containing `<|file_sep|>` stays text).
    pub prompt: Prompt,
    /// Bytes of the document sent as the FIM prefix (ends at the cursor).
    pub prefix: Range<usize>,
    /// Bytes of the document sent as the FIM suffix (starts at the cursor).
    pub suffix: Range<usize>,
    /// Tokens of the prefix window.
    pub prefix_tokens: usize,
    /// Tokens of the suffix window.
    pub suffix_tokens: usize,
    /// The packed repository context, if the file is in the workspace and the budget allowed one.
    pub context: Option<Arc<PackedContext>>,
    /// Tokens of the whole prompt as counted for the budget.
    pub tokens: usize,
    /// The budget of the region it was built in.
    pub budget: usize,
}

/// What the prompt is built from.
pub(crate) struct FimInput<'a> {
    pub snapshot: &'a IndexSnapshot,
    /// Workspace-relative path, `None` outside the workspace (then no repository context is packed).
    pub relative: Option<&'a str>,
    /// The path written after the last `<|file_sep|>`.
    pub display_path: &'a str,
    pub text: &'a str,
    /// Cursor (a char boundary).
    pub offset: usize,
    /// Cap of the suffix window, in tokens.
    pub suffix_tokens: usize,
}

/// Which region a prompt is built in, and the budget of a new one.
pub(crate) struct Pin<'a> {
    pub regions: &'a Regions,
    pub layout: Layout,
    /// The budget of a region chosen now.
    pub budget: usize,
    /// The budgets a remembered region may have to be used.
    pub accept: RangeInclusive<usize>,
}

/// Builds the prompt in the document's remembered region when the request is still in it, else in a new
/// region (remembered for the next request). Deterministic for its inputs and the remembered region.
pub(crate) fn build(
    workspace: &Workspace,
    input: &FimInput<'_>,
    pin: &Pin<'_>,
) -> CompletionPrompt {
    let remembered = pin
        .regions
        .get(input.display_path, pin.layout)
        .filter(|r| pin.accept.contains(&r.budget) && r.suffix_asked == input.suffix_tokens)
        .and_then(|r| Some((r.prefix_for(workspace, input)?, r)));
    let ((prefix_start, prefix_tokens), region) = match remembered {
        Some(found) => found,
        None => {
            let (region, prefix) = Region::new(workspace, input, pin.budget);
            let region = Arc::new(region);
            pin.regions
                .put(input.display_path, pin.layout, region.clone());
            (prefix, region)
        }
    };
    assemble(workspace, input, &region, prefix_start, prefix_tokens)
}

fn assemble(
    workspace: &Workspace,
    input: &FimInput<'_>,
    region: &Region,
    prefix_start: usize,
    prefix_tokens: usize,
) -> CompletionPrompt {
    let (text, offset) = (input.text, input.offset);
    let (suffix_end, suffix_tokens) = suffix_window(workspace, text, offset, region.suffix_cap);
    let (prefix, suffix) = (&text[prefix_start..offset], &text[offset..suffix_end]);
    let mut tokens = prefix_tokens + suffix_tokens + region::FIM_SPECIALS;
    let prompt = match &region.context {
        Some(context) => {
            tokens += context.used_tokens + region.fixed - region::FIM_SPECIALS;
            let files: Vec<RepoFile<'_>> = context
                .items
                .iter()
                .map(|item| RepoFile {
                    path: &item.path,
                    content: &item.text,
                })
                .collect();
            let repo = &context.repo_name;
            Prompt::repo_fim(repo, &files, input.display_path, prefix, suffix)
        }
        None => Prompt::fim(prefix, suffix),
    };
    CompletionPrompt {
        prompt,
        prefix: prefix_start..offset,
        suffix: offset..suffix_end,
        prefix_tokens,
        suffix_tokens,
        context: region.context.clone(),
        tokens,
        budget: region.budget,
    }
}
