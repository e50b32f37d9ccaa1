//! The `--json` forms: a patch outcome `{"diff","files":[{"path","status"}],"warnings","stats","format"}`, and
//! with `--test-cmd` the check loop's transcript (the same keys for the final patch, plus `verdict`, `exit`,
//! `applied` and every round). Core types stay free of serde; this edge converts them by hand, so the wire
//! format is written down in one place.

use serde_json::{json, Value};

use crate::tasks::fix_loop::command::CommandRun;
use crate::tasks::patch::PatchOutcome;
use crate::tasks::{FinishReason, LoopResult, Round};

/// Converts an outcome to the documented JSON object. Warnings are their display strings.
pub fn outcome_to_json(outcome: &PatchOutcome) -> Value {
    let files: Vec<Value> = outcome
        .files
        .iter()
        .map(|file| json!({ "path": file.path, "status": file.status.as_str() }))
        .collect();
    let warnings: Vec<String> = outcome.warnings.iter().map(ToString::to_string).collect();
    let stats = &outcome.stats;
    json!({
        "diff": outcome.diff,
        "files": files,
        "warnings": warnings,
        "stats": {
            "blocks": stats.blocks,
            "files": stats.files,
            "lines_added": stats.lines_added,
            "lines_removed": stats.lines_removed,
            "fuzzy_matches": stats.fuzzy_matches,
        },
        "format": outcome.format.as_str(),
    })
}

/// The check loop's transcript: `{"verdict","exit","applied","diff","files","warnings","stats","format",
/// "rounds":[…],"stopped_early","scratch":{"files","bytes","copy_secs"},"duration_secs"}`. The patch keys are
/// those of [`outcome_to_json`] for the final patch (absent when no answer was usable).
pub fn loop_to_json(result: &LoopResult, exit: u8, applied: bool) -> Value {
    let mut value = match &result.proposal {
        Some(proposal) => outcome_to_json(proposal.outcome()),
        None => json!({}),
    };
    let (files, bytes, copy_time) = result.scratch;
    if let Some(object) = value.as_object_mut() {
        object.insert("verdict".into(), json!(result.verdict.as_str()));
        object.insert("exit".into(), json!(exit));
        object.insert("applied".into(), json!(applied));
        object.insert(
            "rounds".into(),
            Value::Array(result.rounds.iter().map(round_to_json).collect()),
        );
        object.insert("stopped_early".into(), json!(result.stopped_early));
        object.insert(
            "scratch".into(),
            json!({ "files": files, "bytes": bytes, "copy_secs": copy_time.as_secs_f64() }),
        );
        object.insert(
            "duration_secs".into(),
            json!(result.total_time.as_secs_f64()),
        );
    }
    value
}

/// One round: `{"round","prompt_tokens","generated_tokens","answer","finish","format","answer_error","diff",
/// "syntax_errors":[{"path","lines"}],"checks":[…],"outcome","feedback","generation_secs","check_secs"}`
/// (`feedback`: the message the next round was sent, null for the last round).
fn round_to_json(round: &Round) -> Value {
    let syntax: Vec<Value> = round
        .syntax_errors
        .iter()
        .map(|(path, lines)| json!({ "path": path, "lines": lines }))
        .collect();
    json!({
        "round": round.number,
        "prompt_tokens": round.prompt_tokens,
        "generated_tokens": round.generated_tokens,
        "answer": round.answer,
        "finish": finish_word(&round.finish),
        "format": round.format.map(|f| f.as_str()),
        "answer_error": round.answer_error,
        "diff": round.diff,
        "syntax_errors": syntax,
        "checks": round.checks.iter().map(check_to_json).collect::<Vec<_>>(),
        "outcome": round.outcome.as_str(),
        "feedback": round.feedback,
        "generation_secs": round.generation_time.as_secs_f64(),
        "check_secs": round.check_time.as_secs_f64(),
    })
}

/// `end_of_text`, `stop_string`, `max_tokens` (the answer may be cut short), `context_full`, `stopped` or
/// `cancelled`.
fn finish_word(finish: &FinishReason) -> &'static str {
    match finish {
        FinishReason::EndOfText => "end_of_text",
        FinishReason::StopString(_) => "stop_string",
        FinishReason::MaxTokens => "max_tokens",
        FinishReason::ContextFull => "context_full",
        FinishReason::Stopped => "stopped",
        FinishReason::Cancelled => "cancelled",
    }
}

/// One check: `{"command","exit_code","timed_out","duration_secs","output"}` (the full output kept, up to
/// 512 KiB).
fn check_to_json(run: &CommandRun) -> Value {
    json!({
        "command": run.command,
        "exit_code": run.exit_code,
        "timed_out": run.timed_out,
        "duration_secs": run.duration.as_secs_f64(),
        "output": run.output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::patch::{AnswerFormat, FileChange, FileStatus, PatchStats, PatchWarning};

    #[test]
    fn documented_shape() {
        let outcome = PatchOutcome {
            diff: "diff --git a/x b/x\n".into(),
            files: vec![FileChange {
                path: "x".into(),
                status: FileStatus::Added,
            }],
            warnings: vec![PatchWarning::Unchanged { path: "y".into() }],
            stats: PatchStats {
                blocks: 2,
                files: 1,
                lines_added: 3,
                lines_removed: 0,
                fuzzy_matches: 0,
            },
            format: AnswerFormat::WholeFiles,
        };
        assert_eq!(
            outcome_to_json(&outcome),
            json!({
                "diff": "diff --git a/x b/x\n",
                "files": [{"path": "x", "status": "added"}],
                "warnings": ["`y`: the edits leave the file unchanged"],
                "stats": {"blocks": 2, "files": 1, "lines_added": 3, "lines_removed": 0, "fuzzy_matches": 0},
                "format": "whole-files",
            })
        );
    }
}
