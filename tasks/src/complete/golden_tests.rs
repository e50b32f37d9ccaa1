//! Golden tests as data: every `fixtures/completion/*.txt` case runs the whole pipeline (cursor context, stop
//! rules fed in one piece and in small deltas, post-processing) and compares with its expected section.
//! `UPDATE_EXPECT=1 cargo test -p qwen-ls golden` rewrites the expected sections.
//!
//! Case format (sections separated by a line `---`, which therefore cannot occur inside them):
//! ```text
//! //- lang: rust            header lines start with `//- `: `lang` (an LSP language id),
//! //- eol: crlf             optional `eol: crlf` (document) and `model-eol: crlf` (model output),
//! //- note: …               and free-form notes
//! <document with a $0 cursor marker>
//! ---
//! <raw model output>
//! ---
//! stop: <rule that cut the output, or none>
//! edit: <start>..<end> "<inserted text>"        or   rejected: <reason>
//! <document after the edit, with $0 after the inserted text; \r shown as ␍>
//! ```

use qwen_syntax::LanguageSpec;
use std::path::{Path, PathBuf};

use super::{complete_text, CompletionSession, Outcome, Rejection, StopReason};

const SEPARATOR: &str = "\n---\n";
const CURSOR: &str = "$0";
const CR_SHOWN_AS: &str = "␍";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/completion")
}

/// The language a test uses for a language name: the syntax table's row, as the server proper gets it.
pub(crate) fn grammar_for(lang: &str) -> Option<&'static LanguageSpec> {
    qwen_syntax::language_for_name(lang)
}

struct Case {
    lang: String,
    document: String,
    offset: usize,
    model: String,
    expected: String,
}

fn parse_case(content: &str) -> Result<Case, String> {
    let content = content.replace("\r\n", "\n");
    let mut sections = content.splitn(3, SEPARATOR);
    let (Some(first), Some(model), Some(expected)) =
        (sections.next(), sections.next(), sections.next())
    else {
        return Err("expected three sections separated by `---` lines".into());
    };
    let mut body = first;
    let (mut lang, mut doc_crlf, mut model_crlf) = (None, false, false);
    while let Some(line) = body.strip_prefix("//- ") {
        let (line, rest) = line.split_once('\n').unwrap_or((line, ""));
        match line.split_once(": ") {
            Some(("lang", value)) => lang = Some(value.trim().to_string()),
            Some(("eol", "crlf")) => doc_crlf = true,
            Some(("model-eol", "crlf")) => model_crlf = true,
            _ => {}
        }
        body = rest;
    }
    let lang = lang.ok_or("missing `//- lang: …` header")?;
    let offset = body
        .find(CURSOR)
        .ok_or("document has no $0 cursor marker")?;
    let mut document = body.replacen(CURSOR, "", 1);
    let mut offset = offset;
    if doc_crlf {
        offset += document[..offset].matches('\n').count();
        document = document.replace('\n', "\r\n");
    }
    let model = if model_crlf {
        model.replace('\n', "\r\n")
    } else {
        model.to_string()
    };
    let expected = expected.strip_suffix('\n').unwrap_or(expected).to_string();
    Ok(Case {
        lang,
        document,
        offset,
        model,
        expected,
    })
}

fn reason_name(reason: Option<StopReason>) -> &'static str {
    match reason {
        None => "none",
        Some(StopReason::SpecialToken) => "special-token",
        Some(StopReason::Newline) => "newline",
        Some(StopReason::ClosesBlock) => "closes-block",
        Some(StopReason::StopWord) => "stop-word",
        Some(StopReason::Dedent) => "dedent",
        Some(StopReason::Sibling) => "sibling",
        Some(StopReason::Repetition) => "repetition",
    }
}

fn render(case: &Case, outcome: &Outcome) -> String {
    let mut out = format!("stop: {}\n", reason_name(outcome.stop.map(|s| s.reason)));
    match &outcome.result {
        Err(rejection) => {
            let name = match rejection {
                Rejection::Empty => "empty",
                Rejection::Repetitive => "repetitive",
                Rejection::NoChange => "no-change",
            };
            out.push_str(&format!("rejected: {name}"));
        }
        Ok(completion) => {
            let range = &completion.range;
            out.push_str(&format!(
                "edit: {}..{} {:?}\n",
                range.start, range.end, completion.text
            ));
            let end = range.start + completion.text.len();
            let applied = completion
                .apply(&case.document)
                .unwrap_or_else(|| "<range outside document>".into());
            let shown = match (applied.get(..end), applied.get(end..)) {
                (Some(before), Some(after)) => format!("{before}{CURSOR}{after}"),
                _ => applied,
            };
            out.push_str(&shown.replace('\r', CR_SHOWN_AS));
        }
    }
    out
}

/// Feeds the model output in deltas of 1 to 3 chars (cycling), as a tokenizer would.
fn run_streamed(case: &Case, grammar: Option<&'static LanguageSpec>) -> Outcome {
    let mut session = CompletionSession::new(&case.document, case.offset, &case.lang, grammar);
    let chars: Vec<(usize, char)> = case.model.char_indices().collect();
    let mut i = 0;
    let mut size = 1;
    while i < chars.len() {
        let start = chars[i].0;
        let end = chars.get(i + size).map_or(case.model.len(), |(at, _)| *at);
        if session.push(&case.model[start..end]).is_some() {
            break;
        }
        i += size;
        size = size % 3 + 1;
    }
    session.finish()
}

#[test]
fn golden_completion_cases() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/completion exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 25,
        "expected at least 25 golden cases, found {}",
        paths.len()
    );
    let mut failures = Vec::new();
    for path in &paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let content = std::fs::read_to_string(path).expect("readable fixture");
        let case = match parse_case(&content) {
            Ok(case) => case,
            Err(error) => {
                failures.push(format!("{name}: {error}"));
                continue;
            }
        };
        let grammar = grammar_for(&case.lang);
        let whole = complete_text(
            &case.document,
            case.offset,
            &case.lang,
            grammar,
            &case.model,
        );
        let streamed = run_streamed(&case, grammar);
        if whole.result != streamed.result
            || whole.stop.map(|s| s.reason) != streamed.stop.map(|s| s.reason)
        {
            failures.push(format!("{name}: streaming differs from one piece\n  whole:    {whole:?}\n  streamed: {streamed:?}"));
        }
        let actual = render(&case, &whole);
        if actual == case.expected {
            continue;
        }
        if update {
            let body = content.replace("\r\n", "\n");
            let mut sections = body.splitn(3, SEPARATOR);
            let (Some(first), Some(model)) = (sections.next(), sections.next()) else {
                continue;
            };
            std::fs::write(
                path,
                format!("{first}{SEPARATOR}{model}{SEPARATOR}{actual}\n"),
            )
            .expect("fixture writable");
        } else {
            failures.push(format!(
                "{name}:\n--- expected\n{}\n--- actual\n{actual}\n",
                case.expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) failed (UPDATE_EXPECT=1 rewrites):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
