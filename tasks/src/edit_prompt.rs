//! Chat prompts for edits (refactor and patch): the edit-format instructions, packed repository context
//! rendered as fenced excerpts, the code to edit, and the instruction — sized by exact token counts.
//!
//! Order (most relevant last, next to the instruction): system message with the format; then excerpts of
//! related files, least relevant first; then the files being edited, whole (or the largest window around
//! the edited lines that fits); then the instruction. Everything the model is shown of a file is recorded
//! in [`SeenFiles`] so a patch against a file that changed meanwhile is refused.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use qwen_engine::{Message, Role};

use super::patch::{SeenFiles, EDIT_FORMAT_EXAMPLE, EDIT_FORMAT_INSTRUCTIONS};
use super::{TaskError, Workspace};
use qwen_context::{pack, ContextRequest, PackConfig, PackedItem};
use qwen_engine::prompt::CHAT_TEMPLATE_TOKENS;
use qwen_index::IndexSnapshot;

/// The first paragraph of the system message for edits.
pub const EDIT_SYSTEM: &str =
    "You are qwen-ls, a coding agent working in a repository. You make exactly the \
change the user asks for, keep the surrounding style, and change nothing else.";

/// A fenced code block whose fence is longer than any backtick run inside it.
pub(crate) fn fenced(path: &str, text: &str) -> String {
    let longest = text
        .lines()
        .map(|l| l.trim_start().chars().take_while(|&c| c == '`').count())
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let language = qwen_syntax::fence_language(Path::new(path));
    let newline = if text.ends_with('\n') || text.is_empty() {
        ""
    } else {
        "\n"
    };
    format!("{fence}{language}\n{text}{newline}{fence}\n")
}

/// The system message: the edit format, precisely.
pub(crate) fn system_message() -> String {
    format!("{EDIT_SYSTEM}\n\n{EDIT_FORMAT_INSTRUCTIONS}\nExample:\n\n{EDIT_FORMAT_EXAMPLE}")
}

/// A file shown to the model for editing.
pub(crate) struct Shown {
    pub path: String,
    /// The whole text of the file as the model's edits will be matched against.
    pub text: Arc<str>,
    /// Lines (0-based, inclusive) to show; `None` = the whole file.
    pub lines: Option<(u32, u32)>,
}

/// Where retrieval starts: the current file, the cursor line and the selected lines.
#[derive(Debug, Clone, Default)]
pub(crate) struct Anchor {
    pub path: String,
    pub line: u32,
    pub selection: Option<(u32, u32)>,
}

/// What to ask.
pub(crate) struct EditPromptInput<'a> {
    pub snapshot: &'a IndexSnapshot,
    /// Files being edited, in order (the last is the most relevant).
    pub files: Vec<Shown>,
    /// Text after the files and before the instruction (e.g. "Change only lines 3-9 of `a.rs`: …").
    pub focus: String,
    pub instruction: String,
    /// Where retrieval starts, if anywhere.
    pub anchor: Option<Anchor>,
    pub budget: usize,
}

/// The messages, what the model saw, and the prompt's token count.
pub(crate) struct EditPrompt {
    pub messages: Vec<Message>,
    pub seen: SeenFiles,
    pub tokens: usize,
    pub context_tokens: usize,
}

fn lines_of(text: &str, (start, end): (u32, u32)) -> String {
    let mut out = String::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let i = i as u32;
        if i > end {
            break;
        }
        if i >= start {
            out.push_str(line);
        }
    }
    out
}

fn line_count(text: &str) -> u32 {
    text.split_inclusive('\n').count().max(1) as u32
}

fn show(workspace: &Workspace, file: &Shown, lines: Option<(u32, u32)>) -> (String, usize) {
    let block = match lines {
        None => format!(
            "The file `{}`:\n{}\n",
            file.path,
            fenced(&file.path, &file.text)
        ),
        Some((start, end)) => format!(
            "Lines {}-{} of `{}` (the rest of the file is not shown):\n{}\n",
            start + 1,
            end + 1,
            file.path,
            fenced(&file.path, &lines_of(&file.text, (start, end)))
        ),
    };
    let tokens = workspace.count_tokens(&block);
    (block, tokens)
}

/// The text of `path`'s packed items that start at line 0 and follow each other without gaps, joined: equal
/// to the file's text exactly when the model was shown all of it.
fn excerpts_of(items: &[&PackedItem], path: &str) -> String {
    let mut parts: Vec<&PackedItem> = items
        .iter()
        .copied()
        .filter(|item| &*item.path == path)
        .collect();
    parts.sort_by_key(|item| item.start_line);
    let mut text = String::new();
    let mut next_line = 0;
    for item in parts {
        if item.start_line != next_line {
            break;
        }
        text.push_str(&item.text);
        next_line = item.end_line + 1;
    }
    text
}

/// Builds the prompt; errors when the instructions and the edited code alone exceed the budget.
pub(crate) fn build(
    workspace: &Workspace,
    input: EditPromptInput<'_>,
) -> Result<EditPrompt, TaskError> {
    let _span = tracing::debug_span!("edit_prompt", budget = input.budget).entered();
    let system = system_message();
    let tail = format!("{}Instruction: {}", input.focus, input.instruction.trim());
    let fixed =
        workspace.count_tokens(&system) + workspace.count_tokens(&tail) + CHAT_TEMPLATE_TOKENS;
    let mut remaining = input.budget.checked_sub(fixed).ok_or(TaskError::Budget {
        needed: fixed,
        budget: input.budget,
    })?;
    let mut seen = SeenFiles::default();
    let mut file_blocks = String::new();
    for file in &input.files {
        // Whole file if it fits, else the largest window around the requested lines that does.
        let (mut block, mut tokens) = show(workspace, file, None);
        let whole = tokens <= remaining;
        if !whole {
            let total = line_count(&file.text);
            let (mut start, mut end) = file.lines.unwrap_or((0, 0));
            (block, tokens) = show(workspace, file, Some((start, end)));
            if tokens > remaining {
                return Err(TaskError::Budget {
                    needed: input.budget - remaining + tokens,
                    budget: input.budget,
                });
            }
            loop {
                let wider = (start.saturating_sub(5), (end + 5).min(total - 1));
                if wider == (start, end) {
                    break;
                }
                let (b, t) = show(workspace, file, Some(wider));
                if t > remaining {
                    break;
                }
                (block, tokens) = (b, t);
                (start, end) = wider;
            }
        }
        remaining -= tokens;
        file_blocks.push_str(&block);
        if whole {
            seen.record_whole(file.path.clone(), file.text.as_bytes().to_vec());
        } else {
            seen.record(file.path.clone(), file.text.as_bytes().to_vec());
        }
    }

    // Related code: packed with the instruction as the query, rendered as excerpts, least relevant first.
    let edited: BTreeSet<&str> = input.files.iter().map(|f| f.path.as_str()).collect();
    let anchor = input.anchor.clone().unwrap_or_default();
    let request = ContextRequest {
        path: Arc::from(anchor.path.as_str()),
        cursor_line: anchor.line,
        cursor_column: 0,
        selection: anchor.selection,
        instruction: Some(input.instruction.clone()),
        budget: remaining,
    };
    // The edited files are shown whole (or as the widest window that fits): the packer leaves them out.
    let config = PackConfig {
        cursor_window_before: u32::MAX / 4,
        cursor_window_after: u32::MAX / 4,
        ..PackConfig::default()
    };
    let packed = pack(
        input.snapshot,
        &request,
        &config,
        workspace.token_counter(),
        workspace.token_cache(),
    );
    let mut excerpts: Vec<(String, usize, &PackedItem)> = packed
        .items
        .iter()
        .filter(|item| !edited.contains(&*item.path))
        .map(|item| {
            let block = format!(
                "`{}` lines {}-{}:\n{}\n",
                item.path,
                item.start_line + 1,
                item.end_line + 1,
                fenced(&item.path, &item.text)
            );
            let tokens = workspace.count_tokens(&block);
            (block, tokens, item)
        })
        .collect();
    let header = "Related code from the repository (excerpts):\n\n";
    let header_tokens = workspace.count_tokens(header);
    // Markdown costs a few more tokens than the packer's format: drop the least relevant until it fits.
    while !excerpts.is_empty()
        && excerpts.iter().map(|e| e.1).sum::<usize>() + header_tokens > remaining
    {
        excerpts.remove(0);
    }
    let mut user = String::new();
    let mut context_tokens = 0;
    if !excerpts.is_empty() {
        user.push_str(header);
        context_tokens += header_tokens;
        let kept: Vec<&PackedItem> = excerpts.iter().map(|e| e.2).collect();
        for (block, tokens, item) in &excerpts {
            let path = &item.path;
            user.push_str(block);
            context_tokens += tokens;
            if let Some(file) = input.snapshot.file(path) {
                if !file.lossy {
                    // An excerpt that is the whole file counts as a file shown whole: a whole-file answer may
                    // rewrite it.
                    let shown = excerpts_of(&kept, path);
                    if shown == *file.text {
                        seen.record_whole(path.to_string(), file.text.as_bytes().to_vec());
                    } else {
                        seen.record(path.to_string(), file.text.as_bytes().to_vec());
                    }
                }
            }
        }
    }
    remaining -= context_tokens;
    user.push_str(&file_blocks);
    user.push_str(&tail);
    Ok(EditPrompt {
        messages: vec![
            Message::new(Role::System, system),
            Message::new(Role::User, user),
        ],
        seen,
        tokens: input.budget - remaining,
        context_tokens,
    })
}
