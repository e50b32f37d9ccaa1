//! The edit actions on a range of one document ("Add documentation", "Fix diagnostics in range"): the
//! instruction each stands for, the range it covers, and — for a fix when `codeActions.checkCommand` names
//! checks — the check loop, where only a green result becomes an edit. Front ends list the actions and turn
//! the files into their own edit type; everything between is here.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use super::edit::{
    add_documentation_instruction, fix_diagnostics_instruction, DiagnosticInfo, EditProposal,
    FileEdit, RefactorRequest,
};
use super::fix_loop::{CheckedEdit, LoopEvent, LoopOptions, Verdict};
use super::Analysis;
use qwen_engine::CancelToken;

/// An edit action on a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAction {
    /// Add documentation comments to the code in the range.
    Document,
    /// Fix these diagnostics (their lines are added to the range).
    FixDiagnostics(Vec<DiagnosticInfo>),
}

/// Where an action applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTarget {
    /// The document: absolute, or relative to the workspace root.
    pub path: PathBuf,
    /// The document text the range refers to (an editor's buffer).
    pub text: Arc<str>,
    /// Bytes of `text` (widened to whole lines).
    pub range: Range<usize>,
}

/// Why an action produced no edit, said for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoEdit(pub String);

impl Analysis<'_> {
    /// Whether resolving `action` runs the project's checks (a front end shows cancellable progress then).
    pub fn action_runs_checks(&self, action: &RangeAction) -> bool {
        matches!(action, RangeAction::FixDiagnostics(_))
            && LoopOptions::for_fix(&self.settings().code_actions).is_some()
    }

    /// The files `action` changes at `target`; `progress` hears each round of the check loop.
    pub fn resolve_action(
        &self,
        action: &RangeAction,
        target: ActionTarget,
        progress: &dyn Fn(LoopEvent<'_>),
        cancel: &CancelToken,
    ) -> Result<Vec<FileEdit>, NoEdit> {
        let (instruction, lines) = match action {
            RangeAction::Document => (add_documentation_instruction(), None),
            RangeAction::FixDiagnostics(diagnostics) => {
                let first = diagnostics.iter().map(|d| d.lines.0).min();
                let last = diagnostics.iter().map(|d| d.lines.1).max();
                (fix_diagnostics_instruction(diagnostics), first.zip(last))
            }
        };
        let range = widen_to_lines(&target.text, target.range, lines);
        let request = RefactorRequest {
            path: target.path,
            text: Some(target.text),
            range,
            instruction,
        };
        let options = LoopOptions::for_fix(&self.settings().code_actions);
        match (action, options) {
            (RangeAction::FixDiagnostics(_), Some(options)) => {
                self.until_green(&request, &options, progress, cancel)
            }
            _ => self.once(&request, cancel),
        }
    }

    fn once(
        &self,
        request: &RefactorRequest,
        cancel: &CancelToken,
    ) -> Result<Vec<FileEdit>, NoEdit> {
        let answer = self
            .refactor(request, cancel)
            .map_err(|e| NoEdit(e.to_string()))?;
        let proposal = answer.result.map_err(|failure| {
            tracing::warn!(
                "answer was not a valid edit ({failure}):\n{}",
                answer.answer
            );
            NoEdit(format!(
                "the model's answer could not be turned into an edit: {failure}"
            ))
        })?;
        changed_files(proposal).ok_or_else(|| NoEdit("the model proposed no change".to_owned()))
    }

    fn until_green(
        &self,
        request: &RefactorRequest,
        options: &LoopOptions,
        progress: &dyn Fn(LoopEvent<'_>),
        cancel: &CancelToken,
    ) -> Result<Vec<FileEdit>, NoEdit> {
        let result = self
            .edit_until_green(CheckedEdit::Refactor(request), options, progress, cancel)
            .map_err(|e| NoEdit(e.to_string()))?;
        for round in &result.rounds {
            tracing::info!("{}", round.summary());
        }
        if result.verdict != Verdict::Green {
            return Err(NoEdit(format!("{}; nothing was applied", result.summary())));
        }
        (result.proposal.and_then(changed_files))
            .ok_or_else(|| NoEdit("the checks pass and the model proposed no change".to_owned()))
    }
}

fn changed_files(proposal: EditProposal) -> Option<Vec<FileEdit>> {
    let files = proposal.into_files();
    (!files.is_empty()).then_some(files)
}

/// `range` extended to cover lines `lines` (0-based, inclusive) of `text`, if given.
fn widen_to_lines(text: &str, range: Range<usize>, lines: Option<(u32, u32)>) -> Range<usize> {
    let Some((first, last)) = lines else {
        return range;
    };
    let line_start = |line: u32| -> usize {
        if line == 0 {
            return 0;
        }
        text.match_indices('\n')
            .nth(line as usize - 1)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    let end_of_last = line_start(last + 1).saturating_sub(1).max(line_start(last));
    range.start.min(line_start(first))..range.end.max(end_of_last).min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_widen_to_the_diagnostics_lines() {
        let text = "a\nbb\nccc\ndddd\n";
        assert_eq!(widen_to_lines(text, 5..6, None), 5..6);
        // Line 1 ("bb") to line 3 ("dddd"): from byte 2 to the end of "dddd".
        assert_eq!(widen_to_lines(text, 5..6, Some((1, 3))), 2..13);
        // Already wider: unchanged.
        assert_eq!(widen_to_lines(text, 0..14, Some((1, 1))), 0..14);
        // Lines past the end are clamped.
        assert_eq!(widen_to_lines(text, 0..1, Some((9, 9))), 0..14);
    }
}
