//! Qwen's prompt formats, written once: the special tokens by name, the repository-level FIM layout and the
//! ChatML template, emitted into a [`Sink`] — the engine's `Prompt` takes pieces (a special token stays a
//! special token, so user text can never become one), the context layer a `String` (the text it counts).
//! No tokenizer here: counting and ids are the callers' business.
#![deny(missing_docs)]

/// The special tokens prompts are built from, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialToken {
    /// `<|endoftext|>`: end of document (also the base models' EOS).
    EndOfText,
    /// `<|im_start|>`: opens a chat turn.
    ImStart,
    /// `<|im_end|>`: closes a chat turn (the Instruct models' EOS).
    ImEnd,
    /// `<|fim_prefix|>`.
    FimPrefix,
    /// `<|fim_suffix|>`.
    FimSuffix,
    /// `<|fim_middle|>`.
    FimMiddle,
    /// `<|fim_pad|>`.
    FimPad,
    /// `<|repo_name|>`: repository-level FIM header.
    RepoName,
    /// `<|file_sep|>`: repository-level FIM file separator.
    FileSep,
}

impl SpecialToken {
    /// Every special token the engine knows.
    pub const ALL: [SpecialToken; 9] = [
        SpecialToken::EndOfText,
        SpecialToken::ImStart,
        SpecialToken::ImEnd,
        SpecialToken::FimPrefix,
        SpecialToken::FimSuffix,
        SpecialToken::FimMiddle,
        SpecialToken::FimPad,
        SpecialToken::RepoName,
        SpecialToken::FileSep,
    ];

    /// The token's text in `tokenizer.json`.
    pub fn text(self) -> &'static str {
        match self {
            SpecialToken::EndOfText => "<|endoftext|>",
            SpecialToken::ImStart => "<|im_start|>",
            SpecialToken::ImEnd => "<|im_end|>",
            SpecialToken::FimPrefix => "<|fim_prefix|>",
            SpecialToken::FimSuffix => "<|fim_suffix|>",
            SpecialToken::FimMiddle => "<|fim_middle|>",
            SpecialToken::FimPad => "<|fim_pad|>",
            SpecialToken::RepoName => "<|repo_name|>",
            SpecialToken::FileSep => "<|file_sep|>",
        }
    }
}

/// Tokens [`chat_message`] ×2 (a system and a user message) and [`chat_generation`] add around the contents
/// (`<|im_start|>role\n … <|im_end|>\n` ×2 + `<|im_start|>assistant\n`): what budgets reserve for the template.
pub const CHAT_TEMPLATE_TOKENS: usize = 16;

/// Where a prompt is written: text and special tokens, in order.
pub trait Sink {
    /// Appends text (never read as a special token).
    fn text(&mut self, text: &str);
    /// Appends a special token.
    fn special(&mut self, token: SpecialToken);
}

/// The prompt as plain text, special tokens spelled out: what token budgets count.
impl Sink for String {
    fn text(&mut self, text: &str) {
        self.push_str(text);
    }

    fn special(&mut self, token: SpecialToken) {
        self.push_str(token.text());
    }
}

/// `<|repo_name|>{repo}\n`: opens a repository-level prompt.
pub fn repo_header(sink: &mut impl Sink, repo: &str) {
    sink.special(SpecialToken::RepoName);
    sink.text(&format!("{repo}\n"));
}

/// `<|file_sep|>{path}\n{content}`: one file (or part of one) of a repository-level prompt; the file the
/// cursor is in comes last, with empty content, followed by [`fim`].
pub fn repo_file(sink: &mut impl Sink, path: &str, content: &str) {
    sink.special(SpecialToken::FileSep);
    sink.text(&format!("{path}\n{content}"));
}

/// `<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>`: fill in the middle.
pub fn fim(sink: &mut impl Sink, prefix: &str, suffix: &str) {
    sink.special(SpecialToken::FimPrefix);
    sink.text(prefix);
    sink.special(SpecialToken::FimSuffix);
    sink.text(suffix);
    sink.special(SpecialToken::FimMiddle);
}

/// `<|im_start|>{role}\n{content}<|im_end|>\n`: one ChatML message.
pub fn chat_message(sink: &mut impl Sink, role: &str, content: &str) {
    sink.special(SpecialToken::ImStart);
    sink.text(&format!("{role}\n{content}"));
    sink.special(SpecialToken::ImEnd);
    sink.text("\n");
}

/// `<|im_start|>assistant\n`: the turn the model writes.
pub fn chat_generation(sink: &mut impl Sink) {
    sink.special(SpecialToken::ImStart);
    sink.text("assistant\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formats_as_text() {
        let mut text = String::new();
        repo_header(&mut text, "demo");
        repo_file(&mut text, "src/a.rs", "fn a() {}\n");
        repo_file(&mut text, "src/b.rs", "");
        fim(&mut text, "fn b() {", "}");
        assert_eq!(
            text,
            "<|repo_name|>demo\n<|file_sep|>src/a.rs\nfn a() {}\n<|file_sep|>src/b.rs\n\
             <|fim_prefix|>fn b() {<|fim_suffix|>}<|fim_middle|>"
        );
        let mut chat = String::new();
        chat_message(&mut chat, "system", "S");
        chat_message(&mut chat, "user", "U");
        chat_generation(&mut chat);
        assert_eq!(
            chat,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
