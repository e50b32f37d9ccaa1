//! Per-language lexical facts that completion post-processing needs: comment and string syntax for bracket
//! tracking, and the line-start stop words that mark the beginning of the next top-level item.
//!
//! This is deliberately not the syntax layer's grammar table: completion only needs a handful of lexical facts,
//! chosen from the editor's language id string, and works (with fewer rules) for languages without a grammar.

/// A language as far as completion post-processing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Rust.
    Rust,
    /// Python.
    Python,
    /// JavaScript (and JSX).
    JavaScript,
    /// TypeScript (and TSX).
    TypeScript,
    /// Go.
    Go,
    /// Anything else: generic C-like lexing, no stop words.
    Other,
}

impl Lang {
    /// Maps an LSP `languageId` (or a file extension) to a language; unknown ids give [`Lang::Other`].
    pub fn from_id(id: &str) -> Lang {
        match id.trim().to_ascii_lowercase().as_str() {
            "rust" | "rs" => Lang::Rust,
            "python" | "py" | "pyi" => Lang::Python,
            "javascript" | "javascriptreact" | "js" | "jsx" | "mjs" | "cjs" => Lang::JavaScript,
            "typescript" | "typescriptreact" | "ts" | "tsx" | "mts" | "cts" => Lang::TypeScript,
            "go" | "golang" => Lang::Go,
            _ => Lang::Other,
        }
    }

    /// Words that, at the very start of a line (column 0), begin a new top-level item: a completion that has
    /// already produced some text stops before such a line. Imports, constants and variables are left out on
    /// purpose: a completion that writes several of those in a row is common and useful. They play the role of the `"\ndef "`-style stop
    /// strings other servers send to the model, but are matched at line starts so CRLF documents work too.
    pub fn line_stop_words(self) -> &'static [&'static str] {
        match self {
            Lang::Rust => &[
                "fn ",
                "pub ",
                "impl ",
                "impl<",
                "#[",
                "mod ",
                "struct ",
                "enum ",
                "trait ",
                "type ",
                "unsafe ",
                "async fn ",
                "macro_rules!",
            ],
            Lang::Python => &["def ", "class ", "async def ", "if __name__", "@"],
            Lang::JavaScript => &[
                "function ",
                "export ",
                "class ",
                "async function ",
                "module.exports",
            ],
            Lang::TypeScript => &[
                "function ",
                "export ",
                "class ",
                "async function ",
                "interface ",
                "type ",
                "enum ",
                "declare ",
                "namespace ",
                "abstract class ",
            ],
            Lang::Go => &["func ", "type "],
            Lang::Other => &[],
        }
    }

    /// Whether `#` starts a line comment (otherwise `//` and `/* */` do).
    pub(crate) fn hash_comments(self) -> bool {
        matches!(self, Lang::Python)
    }

    /// Whether `"""`/`'''` triple-quoted strings exist.
    pub(crate) fn triple_quotes(self) -> bool {
        matches!(self, Lang::Python)
    }

    /// Whether a single quote may start a lifetime or label rather than a character literal.
    pub(crate) fn rust_quotes(self) -> bool {
        matches!(self, Lang::Rust)
    }

    /// Whether backticks delimit (template or raw) strings.
    pub(crate) fn backtick_strings(self) -> bool {
        matches!(self, Lang::JavaScript | Lang::TypeScript | Lang::Go)
    }

    /// Whether ordinary quoted strings may span lines (Rust string literals can; elsewhere an unterminated
    /// string ends at the newline, which limits the damage of a quote we misread).
    pub(crate) fn multiline_strings(self) -> bool {
        matches!(self, Lang::Rust)
    }

    /// Whether blocks are delimited by indentation rather than braces.
    pub fn indentation_scoped(self) -> bool {
        matches!(self, Lang::Python)
    }

    /// Keywords that continue a compound statement at the indentation of its opener (Python `else:` after an
    /// `if` body): a line starting with one is not the start of a sibling item.
    pub(crate) fn continuation_keywords(self) -> &'static [&'static str] {
        match self {
            Lang::Python => &["else", "elif", "except", "finally", "case"],
            _ => &["else"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_languages() {
        assert_eq!(Lang::from_id("rust"), Lang::Rust);
        assert_eq!(Lang::from_id("Python"), Lang::Python);
        assert_eq!(Lang::from_id("typescriptreact"), Lang::TypeScript);
        assert_eq!(Lang::from_id("javascriptreact"), Lang::JavaScript);
        assert_eq!(Lang::from_id("go"), Lang::Go);
        assert_eq!(Lang::from_id("markdown"), Lang::Other);
        assert!(Lang::Other.line_stop_words().is_empty());
        assert!(Lang::Python.line_stop_words().contains(&"def "));
    }

    #[test]
    fn every_language_the_server_announces_has_lexical_rules() {
        for id in crate::syntax::lsp_language_ids() {
            assert_ne!(
                Lang::from_id(id),
                Lang::Other,
                "{id}: served without completion rules"
            );
        }
    }
}
