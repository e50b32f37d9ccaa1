//! The completion prompt: Qwen's repository-level fill-in-the-middle format, cut per segment by tokens.
//!
//! ```text
//! <|repo_name|>{repo}\n                     ┐ packed repository context (context/): least relevant first,
//! <|file_sep|>{path}\n{lines}…              ┘ the cursor-independent background first (stable KV prefix)
//! <|file_sep|>{current path}\n
//! <|fim_prefix|>{prefix window}<|fim_suffix|>{suffix window}<|fim_middle|>
//! ```
//!
//! Budget (`completion.budget`, measured with the built-in Qwen tokenizer): the fixed specials and the current
//! path first, then the prefix window (whole lines back from the cursor, up to [`PREFIX_SHARE`] of the rest),
//! then the suffix window (whole lines after it, up to [`SUFFIX_SHARE`]), and everything left goes to the
//! packed context, which is told to leave exactly those windows out. Each segment is cut by tokens on its
//! own; the finished prompt is never clipped (clipping the front of a finished prompt is how other servers
//! lose the `<|fim_prefix|>` token).

use std::ops::Range;
use std::sync::Arc;

use qwen_engine::{Prompt, PromptKind, SpecialToken};

use super::Workspace;
use crate::context::{pack, ContextRequest, PackConfig, PackedContext};
use crate::index::IndexSnapshot;

/// Share of the budget (after the fixed parts) the prefix window may take.
pub const PREFIX_SHARE: f64 = 0.6;
/// Share of the budget (after the fixed parts) the suffix window may take.
pub const SUFFIX_SHARE: f64 = 0.15;
/// The FIM specials after the context: `<|fim_prefix|>`, `<|fim_suffix|>`, `<|fim_middle|>`.
const FIM_SPECIALS: usize = 3;

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
    pub context: Option<PackedContext>,
    /// Tokens of the whole prompt as counted for the budget.
    pub tokens: usize,
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
    pub budget: usize,
}

/// Builds the prompt; see the module documentation. Deterministic for its inputs.
pub(crate) fn build(workspace: &Workspace, input: &FimInput<'_>) -> CompletionPrompt {
    let _span = tracing::debug_span!("completion_prompt", budget = input.budget).entered();
    let text = input.text;
    let offset = input.offset;
    let path_line = format!("{}{}\n", SpecialToken::FileSep.text(), input.display_path);
    let fixed = workspace.count_tokens(&path_line) + FIM_SPECIALS;
    let available = input.budget.saturating_sub(fixed);
    let prefix_cap = (available as f64 * PREFIX_SHARE) as usize;
    let suffix_cap = (available as f64 * SUFFIX_SHARE) as usize;
    let (prefix_start, prefix_tokens) = prefix_window(workspace, text, offset, prefix_cap);
    let (suffix_end, suffix_tokens) = suffix_window(workspace, text, offset, suffix_cap);
    let context_budget = available.saturating_sub(prefix_tokens + suffix_tokens);

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
        // The packer must leave out exactly the lines the windows send.
        let config = PackConfig {
            cursor_window_before: cursor_line - line_of(text, prefix_start),
            cursor_window_after: line_of(text, suffix_end.saturating_sub(1).max(offset))
                - cursor_line,
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

    let prefix = &text[prefix_start..offset];
    let suffix = &text[offset..suffix_end];
    let mut prompt = Prompt::new(PromptKind::Fim);
    let mut tokens = prefix_tokens + suffix_tokens + FIM_SPECIALS;
    if let Some(context) = &context {
        prompt.push_special(SpecialToken::RepoName);
        prompt.push_text(format!("{}\n", context.repo_name));
        for item in &context.items {
            prompt.push_special(SpecialToken::FileSep);
            prompt.push_text(format!("{}\n{}", item.path, item.text));
        }
        prompt.push_special(SpecialToken::FileSep);
        prompt.push_text(format!("{}\n", input.display_path));
        tokens += context.used_tokens + fixed - FIM_SPECIALS;
    }
    prompt.push_special(SpecialToken::FimPrefix);
    prompt.push_text(prefix);
    prompt.push_special(SpecialToken::FimSuffix);
    prompt.push_text(suffix);
    prompt.push_special(SpecialToken::FimMiddle);
    CompletionPrompt {
        prompt,
        prefix: prefix_start..offset,
        suffix: offset..suffix_end,
        prefix_tokens,
        suffix_tokens,
        context,
        tokens,
    }
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// 0-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> u32 {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
}

/// The prefix window `[start, offset)` and its exact token count: the cursor line's text before the cursor,
/// then whole earlier lines while they fit `cap`.
fn prefix_window(workspace: &Workspace, text: &str, offset: usize, cap: usize) -> (usize, usize) {
    let cursor_line = line_start(text, offset);
    let mut start = cut_front(workspace, text, cursor_line, offset, cap);
    if start == cursor_line {
        // Per-line counts (memoized: lines repeat from keystroke to keystroke) choose the lines.
        let mut estimate = workspace.count_tokens(&text[cursor_line..offset]);
        while start > 0 {
            let previous = line_start(text, start - 1);
            let line_tokens = workspace.count_tokens(&text[previous..start]);
            if estimate + line_tokens > cap {
                break;
            }
            estimate += line_tokens;
            start = previous;
        }
    }
    // Tokens can merge across line boundaries (a newline with the next indentation): confirm exactly.
    let mut tokens = workspace.token_counter().count(&text[start..offset]);
    while tokens > cap && start < cursor_line {
        start = text[start..]
            .find('\n')
            .map_or(cursor_line, |i| start + i + 1);
        tokens = workspace.token_counter().count(&text[start..offset]);
    }
    if tokens > cap {
        start = cut_front(workspace, text, start, offset, cap);
        tokens = workspace.token_counter().count(&text[start..offset]);
    }
    (start, tokens)
}

/// The suffix window `[offset, end)` and its exact token count: the rest of the cursor line, then whole
/// later lines while they fit `cap`.
fn suffix_window(workspace: &Workspace, text: &str, offset: usize, cap: usize) -> (usize, usize) {
    let line_end = text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1);
    let mut end = cut_back(workspace, text, offset, line_end, cap);
    if end == line_end {
        let mut estimate = workspace.count_tokens(&text[offset..line_end]);
        while end < text.len() {
            let next = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
            let line_tokens = workspace.count_tokens(&text[end..next]);
            if estimate + line_tokens > cap {
                break;
            }
            estimate += line_tokens;
            end = next;
        }
    }
    let mut tokens = workspace.token_counter().count(&text[offset..end]);
    while tokens > cap && end > line_end {
        end = text[..end - 1]
            .rfind('\n')
            .map_or(line_end, |i| i + 1)
            .max(line_end);
        tokens = workspace.token_counter().count(&text[offset..end]);
    }
    if tokens > cap {
        end = cut_back(workspace, text, offset, end, cap);
        tokens = workspace.token_counter().count(&text[offset..end]);
    }
    (end, tokens)
}

/// The largest suffix `[start', end)` of `[start, end)` (cut at a char boundary) with at most `cap` tokens.
fn cut_front(workspace: &Workspace, text: &str, start: usize, end: usize, cap: usize) -> usize {
    let count = |from: usize| workspace.token_counter().count(&text[from..end]);
    if count(start) <= cap {
        return start;
    }
    // Binary search over char boundaries: fewer bytes never means more tokens by much, and the result only
    // has to fit, not be maximal.
    let (mut fits, mut too_long) = (end, start);
    while fits > too_long + 1 {
        let mut mid = too_long + (fits - too_long) / 2;
        while !text.is_char_boundary(mid) {
            mid += 1;
        }
        if mid >= fits {
            break;
        }
        if count(mid) <= cap {
            fits = mid;
        } else {
            too_long = mid;
        }
    }
    fits
}

/// The largest prefix `[start, end')` of `[start, end)` (cut at a char boundary) with at most `cap` tokens.
fn cut_back(workspace: &Workspace, text: &str, start: usize, end: usize, cap: usize) -> usize {
    let count = |to: usize| workspace.token_counter().count(&text[start..to]);
    if count(end) <= cap {
        return end;
    }
    let (mut fits, mut too_long) = (start, end);
    while too_long > fits + 1 {
        let mut mid = fits + (too_long - fits) / 2;
        while !text.is_char_boundary(mid) {
            mid -= 1;
        }
        if mid <= fits {
            break;
        }
        if count(mid) <= cap {
            fits = mid;
        } else {
            too_long = mid;
        }
    }
    fits
}
