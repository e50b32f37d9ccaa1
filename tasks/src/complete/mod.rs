//! The model-independent core of inline completion: everything between "the model produced some text" and
//! "this edit is shown as ghost text", plus the policies around generation (debounce, forward cache).
//!
//! Plain inputs (document text, cursor byte offset, language id, an optional tree-sitter grammar, the
//! generated text as deltas) and plain outputs (a byte range and the text replacing it); no engine, no LSP.
//!
//! ```text
//! CursorContext::new(text, offset, lang)      context.rs   line split, indentation, item region, mode
//!   └─ StopRules::new(&ctx, grammar)          stop.rs      fed deltas; "cut at byte N" as early as possible
//!        └─ postprocess(&ctx, &raw[..N])      postprocess.rs  think/markers, overlap, range, rejections
//! ForwardCache                                forward_cache.rs  typing through a shown suggestion
//! debounce_delay                              debounce.rs  how long to wait before generating
//! ```
//! [`CompletionSession`] bundles the first three for one request.

mod context;
mod debounce;
mod forward_cache;
mod language;
mod lexer;
mod markers;
mod overlap;
mod postprocess;
mod repetition;
mod sibling;
mod stop;
mod text;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod timing_tests;

pub use context::{CursorContext, LineEnding, LinePosition, Mode};
pub use debounce::{debounce_delay, DebounceConfig, History, Trigger};
pub use forward_cache::{CachedCompletion, ForwardCache};
pub use language::Lang;
pub use markers::{cut_at_special_marker, find_special_marker, strip_think};
pub use postprocess::{postprocess, Completion, Rejection};
pub use repetition::is_repetitive;
pub use stop::{Stop, StopReason, StopRules};

use qwen_syntax::LanguageSpec;

/// The result of one completion: why generation was cut (if it was) and what to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The stop rule that cut the generated text, or `None` when it was kept whole.
    pub stop: Option<Stop>,
    /// The edit to show, or why nothing is shown.
    pub result: Result<Completion, Rejection>,
}

/// One completion request: the cursor context plus the streaming stop rules; feed it the generated text and
/// take the final edit. Cheap to create (one pass over the item region around the cursor).
#[derive(Debug)]
pub struct CompletionSession<'a> {
    context: CursorContext<'a>,
    rules: StopRules,
}

impl<'a> CompletionSession<'a> {
    /// A session for the cursor at byte `offset` of `text` (clamped onto a char boundary), in the language
    /// named by the editor's `language_id`. Pass the document's tree-sitter `grammar` to enable the
    /// sibling-item stop rule.
    pub fn new(
        text: &'a str,
        offset: usize,
        language_id: &str,
        grammar: Option<&'static LanguageSpec>,
    ) -> Self {
        let context = CursorContext::new(text, offset, Lang::from_id(language_id));
        let rules = StopRules::new(&context, grammar);
        CompletionSession { context, rules }
    }

    /// The cursor context (mode, line split, …), e.g. to pick a token budget for single-line completions.
    pub fn context(&self) -> &CursorContext<'a> {
        &self.context
    }

    /// Feeds a delta of generated text; `Some` means "stop generating now".
    pub fn push(&mut self, delta: &str) -> Option<Stop> {
        self.rules.push(delta)
    }

    /// Ends the session (generation stopped by the rules, by the model or by the token limit) and
    /// post-processes what is kept.
    pub fn finish(mut self) -> Outcome {
        let stop = self.rules.finish();
        let raw = self.rules.text();
        let kept = stop.and_then(|s| raw.get(..s.at)).unwrap_or(raw);
        Outcome {
            stop,
            result: postprocess(&self.context, kept),
        }
    }
}

/// Runs a whole generated text through a [`CompletionSession`] at once (for non-streaming callers and tests).
pub fn complete_text(
    text: &str,
    offset: usize,
    language_id: &str,
    grammar: Option<&'static LanguageSpec>,
    generated: &str,
) -> Outcome {
    let mut session = CompletionSession::new(text, offset, language_id, grammar);
    session.push(generated);
    session.finish()
}

#[cfg(test)]
mod tests {
    use super::golden_tests::grammar_for;
    use super::*;

    /// Every byte offset (char boundaries or not) of documents full of multi-byte characters, CRLF and LF,
    /// with awkward model outputs: nothing panics, and every edit starts at a char boundary and applies.
    #[test]
    fn never_panics_and_edits_land_on_char_boundaries() {
        let docs = [
            (
                "rust",
                "fn é() {\n    let s = \"日本\";$0\n    (x, 'ü')\n}\n",
            ),
            ("python", "def ü(a):\r\n    return {\"ключ\": a}\r\n"),
            ("typescript", "const 変数 = (x: string) => `${x}→`;\n"),
            ("go", "package main\n\nfunc f() {\n\ts := \"ñ\"\n}\n"),
            ("javascript", ""),
        ];
        let long_line = format!("x = \"{}\"\n", "é".repeat(100));
        let outputs = [
            long_line.as_str(),
            "",
            "\n",
            "é)\n}",
            "}}}}",
            "\"日本\");\n    ok()",
            "<think>🤔</think>\n😀(",
            "a<|fim_pad|>b",
            "\r\n\tx\r\n",
            "'",
        ];
        for (lang, doc) in docs {
            let doc = doc.replacen("$0", "", 1);
            let grammar = grammar_for(lang);
            for offset in 0..=doc.len() + 1 {
                for output in outputs {
                    let outcome = complete_text(&doc, offset, lang, grammar, output);
                    if let Ok(completion) = &outcome.result {
                        assert!(
                            doc.is_char_boundary(completion.range.start),
                            "{lang} {offset} {output:?}"
                        );
                        assert!(
                            doc.is_char_boundary(completion.range.end),
                            "{lang} {offset} {output:?}"
                        );
                        assert!(
                            completion.range.start <= offset,
                            "{lang} {offset} {output:?}"
                        );
                        assert!(
                            completion.apply(&doc).is_some(),
                            "{lang} {offset} {output:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn session_api_streams_and_finishes() {
        let doc = "fn add(a: i32, b: i32) -> i32 {\n    \n}\n";
        let offset = doc.find("    \n").map(|i| i + 4).expect("body line");
        let grammar = grammar_for("rust");
        let mut session = CompletionSession::new(doc, offset, "rust", grammar);
        assert_eq!(session.context().mode, Mode::MultiLine);
        let mut stopped = None;
        for delta in ["a ", "+ b", "\n", "}", "\n\nfn sub() {}"] {
            stopped = session.push(delta);
            if stopped.is_some() {
                break;
            }
        }
        assert_eq!(stopped.map(|s| s.reason), Some(StopReason::ClosesBlock));
        let outcome = session.finish();
        assert_eq!(
            outcome.result,
            Ok(Completion {
                range: offset..offset,
                text: "a + b".into()
            })
        );
    }
}
