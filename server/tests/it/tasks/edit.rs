//! `tasks::refactor` and `tasks::patch` with a scripted answer: a well-formed patch end to end (diff that
//! `git apply --check` accepts, atomic apply), files changed while the model ran or before the write,
//! refactors confined to their file, unsaved editor text, and the instruction templates.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use qwen_ls::tasks::patch::{PatchError, PatchExit};
use qwen_ls::tasks::{
    add_documentation_instruction, fix_diagnostics_instruction, Analysis, Caches, CancelToken,
    Change, DiagnosticInfo, EditFailure, PatchRequest, RefactorRequest, Settings,
};

use super::support::{repo_copy, workspace, Scripted};

const FIX_DESCRIBE: &str = "I will change the description.\n\nsrc/lib.rs\n```rust\n<<<<<<< SEARCH\n    \
format!(\"circle of area {}\", circle.area())\n=======\n    format!(\"a circle of area {:.2}\", circle.area())\n\
>>>>>>> REPLACE\n```\n";

fn git_apply_check(root: &Path, diff: &str) -> bool {
    let patch_file = root.join("../change.diff");
    std::fs::write(&patch_file, diff).expect("write diff");
    Command::new("git")
        .args(["apply", "--check"])
        .arg(&patch_file)
        .current_dir(root)
        .status()
        .expect("git runs")
        .success()
}

fn request(instruction: &str) -> PatchRequest {
    PatchRequest {
        instruction: instruction.into(),
        files: vec![PathBuf::from("src/lib.rs")],
        budget: Some(4000),
    }
}

#[test]
fn a_well_formed_answer_becomes_a_diff_git_accepts_and_applies_atomically() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let generator = Scripted::new(FIX_DESCRIBE);
    let answer = Analysis::new(&workspace, &generator, &Caches::new(), &Settings::default())
        .patch(
            &request("Show two decimals in describe"),
            &CancelToken::new(),
        )
        .expect("runs");
    assert_eq!(answer.answer, FIX_DESCRIBE);
    let proposal = answer.result.expect("a valid patch");
    let outcome = proposal.outcome();
    assert_eq!(outcome.exit(), PatchExit::Produced);
    assert!(
        outcome
            .diff
            .starts_with("diff --git a/src/lib.rs b/src/lib.rs\n"),
        "{}",
        outcome.diff
    );
    assert!(git_apply_check(&root, &outcome.diff));
    let file = &proposal.files()[0];
    assert_eq!(file.path, "src/lib.rs");
    assert!(
        file.after.contains("{:.2}") && !file.before.as_deref().unwrap_or("").contains("{:.2}")
    );
    // The prompt: edit format, the named file whole, the instruction last.
    let prompt = generator.last_prompt();
    assert!(prompt.contains("<<<<<<< SEARCH"));
    assert!(
        prompt.contains("The file `src/lib.rs`:\n```rust\n//! Shapes and their areas."),
        "{prompt}"
    );
    assert!(
        prompt.trim_end().ends_with(
            "Instruction: Show two decimals in describe<|im_end|>\n<|im_start|>assistant"
        ),
        "{prompt}"
    );
    proposal.apply().expect("applies");
    let written = std::fs::read_to_string(root.join("src/lib.rs")).expect("read");
    assert_eq!(written, file.after);
}

#[test]
fn a_file_changed_between_read_and_write_is_never_written() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let answer = Analysis::new(
        &workspace,
        &Scripted::new(FIX_DESCRIBE),
        &Caches::new(),
        &Settings::default(),
    )
    .patch(&request("Show two decimals"), &CancelToken::new())
    .expect("runs");
    let proposal = answer.result.expect("valid");
    let lib = root.join("src/lib.rs");
    let changed = format!(
        "{}// someone else's edit\n",
        std::fs::read_to_string(&lib).expect("read")
    );
    std::fs::write(&lib, &changed).expect("write");
    let err = proposal.apply().expect_err("refused");
    assert_eq!(err.exit(), PatchExit::UsageOrEnvironment);
    assert_eq!(std::fs::read_to_string(&lib).expect("read"), changed);
}

#[test]
fn a_file_changed_while_the_model_ran_is_stale() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let lib = root.join("src/lib.rs");
    let mut generator = Scripted::new(FIX_DESCRIBE);
    let target = lib.clone();
    generator.before_answer = Some(Box::new(move || {
        let text = std::fs::read_to_string(&target).expect("read");
        std::fs::write(&target, format!("// edited meanwhile\n{text}")).expect("write");
    }));
    let answer = Analysis::new(&workspace, &generator, &Caches::new(), &Settings::default())
        .patch(&request("Show two decimals"), &CancelToken::new())
        .expect("runs");
    let failure = answer.result.expect_err("stale");
    assert!(
        matches!(failure, EditFailure::Patch(PatchError::Stale { .. })),
        "{failure}"
    );
    assert_eq!(failure.exit(), PatchExit::UsageOrEnvironment);
    assert!(std::fs::read_to_string(&lib)
        .expect("read")
        .starts_with("// edited meanwhile\n"));
}

#[test]
fn invalid_answers_come_back_raw_with_exit_2() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    for raw in [
        "I cannot do that.",
        "src/lib.rs\n<<<<<<< SEARCH\nno such line\n=======\nx\n>>>>>>> REPLACE\n",
    ] {
        let answer = Analysis::new(
            &workspace,
            &Scripted::new(raw),
            &Caches::new(),
            &Settings::default(),
        )
        .patch(&request("anything"), &CancelToken::new())
        .expect("runs");
        assert_eq!(answer.answer, raw);
        assert_eq!(
            answer.result.expect_err("invalid").exit(),
            PatchExit::InvalidAnswer
        );
    }
}

#[test]
fn refactors_stay_in_their_file_and_use_the_editor_text() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let other_file = "src/helper.rs\n```rust\n<<<<<<< SEARCH\n=======\n// new\n>>>>>>> REPLACE\n```\n\
                      src/lib.rs\n```rust\n<<<<<<< SEARCH\n/// Total area of several circles.\n=======\n/// Sum of areas.\n>>>>>>> REPLACE\n```\n";
    let text = std::fs::read_to_string(root.join("src/lib.rs")).expect("read");
    let at = text.find("total += ").expect("inside total_area");
    let answer = Analysis::new(
        &workspace,
        &Scripted::new(other_file),
        &Caches::new(),
        &Settings::default(),
    )
    .refactor(
        &RefactorRequest {
            path: PathBuf::from("src/lib.rs"),
            text: None,
            range: at..at,
            instruction: add_documentation_instruction(),
        },
        &CancelToken::new(),
    )
    .expect("runs");
    match answer.result {
        Err(EditFailure::OutsideTarget { target, paths }) => {
            assert_eq!(
                (target.as_str(), paths),
                ("src/lib.rs", vec!["src/helper.rs".to_string()])
            );
        }
        other => panic!("expected OutsideTarget, got {other:?}"),
    }
    // An open document with unsaved changes: the patch is computed against the editor's text.
    let unsaved = text.replace(
        "/// Total area of several circles.",
        "/// Total area (unsaved).",
    );
    workspace
        .apply_change(Change::Open {
            path: "src/lib.rs".into(),
            version: 5,
            text: unsaved.clone(),
        })
        .expect("open");
    let generator = Scripted::new(
        "src/lib.rs\n```rust\n<<<<<<< SEARCH\n/// Total area (unsaved).\n=======\n/// Total area of circles.\n>>>>>>> REPLACE\n```\n",
    );
    let answer = Analysis::new(&workspace, &generator, &Caches::new(), &Settings::default())
        .refactor(
            &RefactorRequest {
                path: root.join("src/lib.rs"),
                text: Some(Arc::from(unsaved.as_str())),
                range: at..at,
                instruction: "Shorter doc".into(),
            },
            &CancelToken::new(),
        )
        .expect("runs");
    let proposal = answer.result.expect("valid against the editor text");
    let file = &proposal.files()[0];
    assert_eq!(file.version, Some(5));
    assert_eq!(file.before.as_deref(), Some(unsaved.as_str()));
    assert!(generator
        .last_prompt()
        .contains("Change only lines 8-14 of `src/lib.rs`"));
}

#[test]
fn instruction_templates() {
    assert!(add_documentation_instruction().contains("Do not change any code"));
    let text = fix_diagnostics_instruction(&[
        DiagnosticInfo {
            lines: (11, 11),
            message: "mismatched types\n".into(),
            severity: Some("error".into()),
            source: Some("rustc".into()),
        },
        DiagnosticInfo {
            lines: (2, 4),
            message: "unused variable".into(),
            severity: None,
            source: None,
        },
    ]);
    assert_eq!(
        text,
        "Fix these problems reported by the editor, changing as little as possible:\n\
         - line 12 (error, rustc): mismatched types\n- lines 3-5: unused variable\n"
    );
}
