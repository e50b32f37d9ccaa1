//! The `--json` form of a patch outcome: `{"diff","files":[{"path","status"}],"warnings","stats"}`. Core types
//! stay free of serde; this edge converts them by hand, so the wire format is written down in one place.

use serde_json::{json, Value};

use crate::tasks::patch::PatchOutcome;

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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::patch::{FileChange, FileStatus, PatchStats, PatchWarning};

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
        };
        assert_eq!(
            outcome_to_json(&outcome),
            json!({
                "diff": "diff --git a/x b/x\n",
                "files": [{"path": "x", "status": "added"}],
                "warnings": ["`y`: the edits leave the file unchanged"],
                "stats": {"blocks": 2, "files": 1, "lines_added": 3, "lines_removed": 0, "fuzzy_matches": 0},
            })
        );
    }
}
