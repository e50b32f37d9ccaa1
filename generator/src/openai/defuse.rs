//! Keeping user text from becoming special tokens on a server that tokenizes prompt *text*.
//!
//! Locally, specials enter a prompt only as `Piece::Special` and text is encoded with specials disabled. A
//! remote raw prompt is one string, and vLLM, SGLang and llama.cpp all turn the literal text `<|file_sep|>` into
//! the special token — so a source file that mentions `<|im_end|>` (any tokenizer or LLM code, qwen-ls's own)
//! would cut a FIM prompt short or close a chat turn. Text pieces and chat message contents are therefore
//! *defused*: in every `<|name|>` a zero-width space (U+200B) goes after the `<`, which no tokenizer matches as
//! a special. The answer is *restored* on the way back: a U+200B right after `<` is dropped, so a model that
//! copies such a marker from its context gives back the text the user wrote.

use std::borrow::Cow;

use qwen_engine::{Piece, Prompt};

const ZWSP: char = '\u{200b}';

/// `text` with a zero-width space inserted after the `<` of every `<|name|>` (name: ASCII letters, digits,
/// `_`); borrowed when there is none.
pub(crate) fn defuse(text: &str) -> Cow<'_, str> {
    if !text.contains("<|") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(at) = rest.find("<|") {
        out.push_str(&rest[..at + 1]);
        let after = &rest[at + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with("|>") {
            out.push(ZWSP);
        }
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The prompt as one string: specials as their token text, text pieces defused.
pub(crate) fn prompt_text(prompt: &Prompt) -> String {
    let mut out = String::new();
    for piece in &prompt.pieces {
        match piece {
            Piece::Text(t) => out.push_str(&defuse(t)),
            Piece::Special(s) => out.push_str(s.text()),
        }
    }
    out
}

/// Undoes [`defuse`] on streamed text: drops a U+200B that directly follows `<`, across delta boundaries.
#[derive(Debug, Default)]
pub(crate) struct Restore {
    after_lt: bool,
}

impl Restore {
    /// The restored delta.
    pub(crate) fn push(&mut self, delta: &str) -> String {
        let mut out = String::with_capacity(delta.len());
        for c in delta.chars() {
            if !(c == ZWSP && self.after_lt) {
                out.push(c);
            }
            self.after_lt = c == '<';
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_defused_and_other_text_is_untouched() {
        assert_eq!(defuse("a <|im_end|> b"), "a <\u{200b}|im_end|> b");
        assert_eq!(
            defuse("<|fim_prefix|><|file_sep|>"),
            "<\u{200b}|fim_prefix|><\u{200b}|file_sep|>"
        );
        for untouched in [
            "x <| seq",
            "a <|| b",
            "<|>",
            "<|a b|>",
            "no markers",
            "<|unterminated",
        ] {
            assert_eq!(defuse(untouched), untouched);
        }
        assert!(matches!(defuse("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn prompts_keep_their_specials() {
        let prompt = Prompt::fim("s = '<|endoftext|>'", "");
        assert_eq!(
            prompt_text(&prompt),
            "<|fim_prefix|>s = '<\u{200b}|endoftext|>'<|fim_suffix|><|fim_middle|>"
        );
    }

    #[test]
    fn restoring_undoes_defusing_across_deltas() {
        let defused = defuse("x <|im_end|> y <|file_sep|>").into_owned();
        let mut restore = Restore::default();
        let mut out = String::new();
        for c in defused.chars() {
            out.push_str(&restore.push(&c.to_string()));
        }
        assert_eq!(out, "x <|im_end|> y <|file_sep|>");
        assert_eq!(Restore::default().push("a\u{200b}b"), "a\u{200b}b");
    }
}
