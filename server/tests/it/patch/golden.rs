//! Table-driven golden tests: each `fixtures/patch/<case>/` holds `repo/` (the original tree), `answer.md`
//! (a raw model answer), optional `symlinks.txt` (`link -> target` lines, `$OUTSIDE` = a directory outside the
//! root; links are made in a temporary copy), and the expectation: `expected.diff` or `expected.error`
//! (exact text), plus `expected.warnings` when there are warnings. `UPDATE_EXPECT=1` rewrites expectations.
//!
//! For every produced diff: `git apply --check` must accept it, and `git apply` on one copy must give the same
//! tree as our own atomic apply on another.

use std::fs;
use std::path::{Path, PathBuf};

use qwen_ls::tasks::patch::{prepare, ApplyPolicy, PatchExit, PatchOptions};

use super::support::{copy_dir, git_apply, git_init, snapshot, RustChecker};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/patch")
}

/// Copies `case/repo` to `dest` and creates the case's symbolic links.
fn materialise(case: &Path, dest: &Path, outside: &Path) {
    copy_dir(&case.join("repo"), dest);
    let Ok(spec) = fs::read_to_string(case.join("symlinks.txt")) else {
        return;
    };
    for line in spec
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (link, target) = line.split_once(" -> ").expect("`link -> target`");
        let target = target.replace("$OUTSIDE", &outside.to_string_lossy());
        let link = dest.join(link);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        #[cfg(not(unix))]
        let _ = (target, link);
    }
}

/// Compares `actual` with the file `path`, or rewrites it under `UPDATE_EXPECT=1`. Returns a mismatch message.
fn expect_file(path: &Path, actual: Option<&str>) -> Option<String> {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        match actual {
            Some(text) => fs::write(path, text).expect("write expectation"),
            None => {
                let _ = fs::remove_file(path);
            }
        }
        return None;
    }
    let expected = fs::read_to_string(path).ok();
    (expected.as_deref() != actual).then(|| {
        format!(
            "{}:\n--- expected\n{}\n--- actual\n{}",
            path.display(),
            expected.as_deref().unwrap_or("<no file>"),
            actual.unwrap_or("<none>")
        )
    })
}

fn run_case(case: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("outside dir");
    fs::write(
        outside.join("secret.rs"),
        "pub const KEY: &str = \"secret\";\n",
    )
    .expect("secret");
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    for dir in [&ours, &theirs] {
        materialise(case, dir, &outside);
        git_init(dir);
    }
    let before_outside = snapshot(&outside);
    let answer = fs::read_to_string(case.join("answer.md")).expect("answer.md");
    let result = prepare(&ours, &answer, &PatchOptions::new(&RustChecker));

    let (diff, error, warnings) = match &result {
        Ok(patch) => {
            let outcome = patch.outcome();
            let warnings: Vec<String> = outcome.warnings.iter().map(|w| format!("{w}\n")).collect();
            (Some(outcome.diff.clone()), None, warnings.concat())
        }
        Err(err) => {
            if err.exit() != PatchExit::InvalidAnswer {
                failures.push(format!(
                    "error exit code {:?}, expected InvalidAnswer: {err}",
                    err.exit()
                ));
            }
            (None, Some(format!("{err}\n")), String::new())
        }
    };
    failures.extend(expect_file(&case.join("expected.diff"), diff.as_deref()));
    failures.extend(expect_file(&case.join("expected.error"), error.as_deref()));
    failures.extend(expect_file(
        &case.join("expected.warnings"),
        (!warnings.is_empty()).then_some(&warnings[..]),
    ));

    if let Ok(patch) = result {
        let diff = &patch.outcome().diff;
        if !diff.is_empty() {
            let (ok, out) = git_apply(&theirs, diff, &["--check"]);
            if !ok {
                failures.push(format!(
                    "git apply --check rejected the diff:\n{out}\n{diff}"
                ));
            }
            let (ok, out) = git_apply(&theirs, diff, &[]);
            if !ok {
                failures.push(format!("git apply failed:\n{out}"));
            }
        }
        // Compared with `git apply`, which has no policy: every golden patch is written.
        let everything = ApplyPolicy {
            allow_config_edits: true,
            allow_syntax_errors: true,
        };
        if let Err(err) = patch.apply_with(everything) {
            failures.push(format!("our apply failed: {err}"));
        }
        if snapshot(&ours) != snapshot(&theirs) {
            failures.push("our apply and git apply disagree".to_string());
        }
    } else if snapshot(&ours) != snapshot(&theirs) {
        failures.push("a failed patch changed files".to_string());
    }
    if snapshot(&outside) != before_outside {
        failures.push("files outside the root changed".to_string());
    }
    failures
}

#[test]
fn golden_cases() {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("fixtures/patch")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("answer.md").is_file())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 15,
        "expected the fixture table, found {} cases",
        cases.len()
    );
    let mut report = String::new();
    for case in &cases {
        #[cfg(not(unix))]
        if case.join("symlinks.txt").exists() {
            continue;
        }
        for failure in run_case(case) {
            let name = case
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            report.push_str(&format!("[{name}] {failure}\n\n"));
        }
    }
    assert!(
        report.is_empty(),
        "golden failures (UPDATE_EXPECT=1 rewrites expectations):\n{report}"
    );
}
