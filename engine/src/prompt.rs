//! Prompts as pieces — literal text or a named special token — and the Qwen formats built from them:
//! fill-in-the-middle, repository-level FIM, and the ChatML chat template.
//!
//! Because specials are pieces and text is encoded with the plain encoder, a literal `<|im_end|>` in user code
//! stays text: it can never close a turn or open a FIM segment. `to_text` renders the same prompt as one string
//! for a remote backend that tokenizes on its side.

use crate::tokenizer::{SpecialToken, SpecialTokens, Tokenizer, TokenizerError};

pub use qwen_format::CHAT_TEMPLATE_TOKENS;

/// One piece of a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text, always tokenized as text.
    Text(String),
    /// A special token, by name.
    Special(SpecialToken),
}

/// The shape of a prompt, which decides the natural stop tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// Plain continuation of text.
    Raw,
    /// Fill-in-the-middle (plain or repository-level).
    Fim,
    /// ChatML conversation ending in an open assistant turn.
    Chat,
}

/// A chat speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What they say.
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
        }
    }
}

/// A file given as repository context to a repository-level FIM prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile<'a> {
    /// Path relative to the repository root.
    pub path: &'a str,
    /// File contents.
    pub content: &'a str,
}

/// A prompt: pieces plus its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The pieces, in order.
    pub pieces: Vec<Piece>,
    /// What kind of prompt this is.
    pub kind: PromptKind,
}

impl Prompt {
    /// An empty prompt of `kind`.
    pub fn new(kind: PromptKind) -> Self {
        Prompt {
            pieces: Vec::new(),
            kind,
        }
    }

    /// A raw text prompt.
    pub fn text(text: impl Into<String>) -> Self {
        let mut p = Prompt::new(PromptKind::Raw);
        p.push_text(text);
        p
    }

    /// `<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>`.
    pub fn fim(prefix: &str, suffix: &str) -> Self {
        let mut p = Prompt::new(PromptKind::Fim);
        qwen_format::fim(&mut p, prefix, suffix);
        p
    }

    /// Qwen's repository-level FIM: `<|repo_name|>{repo}\n`, then `<|file_sep|>{path}\n{content}\n` per context
    /// file, then `<|file_sep|>{target}\n` and the FIM segments. Each file's content ends in exactly one newline.
    /// The one writer of this format's pieces (the context layer renders the same text to count its tokens;
    /// a test holds the two together).
    pub fn repo_fim(
        repo: &str,
        files: &[RepoFile<'_>],
        target: &str,
        prefix: &str,
        suffix: &str,
    ) -> Self {
        let mut p = Prompt::new(PromptKind::Fim);
        qwen_format::repo_header(&mut p, repo);
        for file in files {
            // Each file ends with a newline, so the next separator starts a line.
            if file.content.ends_with('\n') {
                qwen_format::repo_file(&mut p, file.path, file.content);
            } else {
                qwen_format::repo_file(&mut p, file.path, &format!("{}\n", file.content));
            }
        }
        qwen_format::repo_file(&mut p, target, "");
        qwen_format::fim(&mut p, prefix, suffix);
        p
    }

    /// The Qwen ChatML template: `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then
    /// `<|im_start|>assistant\n` when `add_generation_prompt`. No default system message is added.
    pub fn chat(messages: &[Message], add_generation_prompt: bool) -> Self {
        let mut p = Prompt::new(PromptKind::Chat);
        for m in messages {
            qwen_format::chat_message(&mut p, m.role.as_str(), &m.content);
        }
        if add_generation_prompt {
            qwen_format::chat_generation(&mut p);
        }
        p
    }

    /// Appends literal text (merged with a preceding text piece).
    pub fn push_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        match self.pieces.last_mut() {
            Some(Piece::Text(last)) => last.push_str(&text),
            _ => self.pieces.push(Piece::Text(text)),
        }
    }

    /// Appends a special token.
    pub fn push_special(&mut self, token: SpecialToken) {
        self.pieces.push(Piece::Special(token));
    }

    /// Token ids: text pieces through the plain encoder, specials by name (error if the tokenizer lacks one).
    pub fn to_ids(&self, tokenizer: &Tokenizer) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => ids.extend(tokenizer.encode(t)?),
                Piece::Special(s) => ids.push(tokenizer.specials().require(*s)?),
            }
        }
        Ok(ids)
    }

    /// The prompt as one string (specials written as their token text).
    pub fn to_text(&self) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Special(s) => s.text(),
            })
            .collect()
    }

    /// The special tokens that end a completion of this kind of prompt.
    pub fn stop_specials(&self) -> &'static [SpecialToken] {
        match self.kind {
            // Base models end with endoftext; FIM-trained ones may emit fim_pad or start the next file; Instruct
            // models may close a turn.
            PromptKind::Fim => &[
                SpecialToken::EndOfText,
                SpecialToken::FimPad,
                SpecialToken::FileSep,
                SpecialToken::ImEnd,
            ],
            PromptKind::Chat => &[SpecialToken::ImEnd, SpecialToken::EndOfText],
            PromptKind::Raw => &[SpecialToken::EndOfText, SpecialToken::ImEnd],
        }
    }

    /// Ids of [`Prompt::stop_specials`] that the tokenizer has.
    pub fn stop_tokens(&self, specials: &SpecialTokens) -> Vec<u32> {
        specials.ids_of(self.stop_specials())
    }
}

/// The formats of `qwen_format` write into a prompt as pieces: a special token stays a special token.
impl qwen_format::Sink for Prompt {
    fn text(&mut self, text: &str) {
        self.push_text(text);
    }

    fn special(&mut self, token: SpecialToken) {
        self.push_special(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_render_as_qwen_expects() {
        assert_eq!(
            Prompt::fim("fn a() {", "}\n").to_text(),
            "<|fim_prefix|>fn a() {<|fim_suffix|>}\n<|fim_middle|>"
        );
        let files = [RepoFile {
            path: "src/lib.rs",
            content: "pub mod a;",
        }];
        assert_eq!(
            Prompt::repo_fim("demo", &files, "src/a.rs", "fn x", "").to_text(),
            "<|repo_name|>demo\n<|file_sep|>src/lib.rs\npub mod a;\n<|file_sep|>src/a.rs\n\
             <|fim_prefix|>fn x<|fim_suffix|><|fim_middle|>"
        );
        let chat = Prompt::chat(
            &[
                Message::new(Role::System, "Be brief."),
                Message::new(Role::User, "Hi"),
            ],
            true,
        );
        assert_eq!(
            chat.to_text(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(chat.kind, PromptKind::Chat);
    }
}
