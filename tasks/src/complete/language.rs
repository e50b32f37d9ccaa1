//! The lexical facts completion post-processing reads, from the syntax layer's language table
//! ([`qwen_syntax::Lexical`]): a document's language is chosen by its editor language id (or extension), and
//! a language without a row gets generic C-like lexing with no stop words.

use qwen_syntax::{language_for_id, Lexical};

/// A language as far as completion post-processing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lang {
    lexical: &'static Lexical,
}

impl Lang {
    /// Languages without a row in the table: generic C-like lexing, no stop words.
    pub const OTHER: Lang = Lang {
        lexical: &Lexical::GENERIC,
    };

    /// Maps an LSP `languageId` (or a file extension) to a language; unknown ids give [`Lang::OTHER`].
    pub fn from_id(id: &str) -> Lang {
        language_for_id(id).map_or(Lang::OTHER, |spec| Lang {
            lexical: &spec.lexical,
        })
    }

    /// See [`Lexical::line_stop_words`].
    pub fn line_stop_words(self) -> &'static [&'static str] {
        self.lexical.line_stop_words
    }

    /// See [`Lexical::hash_comments`].
    pub(crate) fn hash_comments(self) -> bool {
        self.lexical.hash_comments
    }

    /// See [`Lexical::triple_quotes`].
    pub(crate) fn triple_quotes(self) -> bool {
        self.lexical.triple_quotes
    }

    /// See [`Lexical::lifetime_quotes`].
    pub(crate) fn rust_quotes(self) -> bool {
        self.lexical.lifetime_quotes
    }

    /// See [`Lexical::backtick_strings`].
    pub(crate) fn backtick_strings(self) -> bool {
        self.lexical.backtick_strings
    }

    /// See [`Lexical::backtick_escapes`].
    pub(crate) fn backtick_escapes(self) -> bool {
        self.lexical.backtick_escapes
    }

    /// See [`Lexical::multiline_strings`].
    pub(crate) fn multiline_strings(self) -> bool {
        self.lexical.multiline_strings
    }

    /// See [`Lexical::indentation_scoped`].
    pub fn indentation_scoped(self) -> bool {
        self.lexical.indentation_scoped
    }

    /// See [`Lexical::continuation_keywords`].
    pub(crate) fn continuation_keywords(self) -> &'static [&'static str] {
        self.lexical.continuation_keywords
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_languages() {
        assert!(Lang::from_id("rust").rust_quotes());
        assert!(Lang::from_id(" Python").line_stop_words().contains(&"def "));
        assert!(Lang::from_id("py").indentation_scoped());
        assert!(Lang::from_id("typescriptreact")
            .line_stop_words()
            .contains(&"interface "));
        assert!(Lang::from_id("javascriptreact").backtick_escapes());
        assert!(!Lang::from_id("go").backtick_escapes());
        assert_eq!(Lang::from_id("markdown"), Lang::OTHER);
        assert!(Lang::OTHER.line_stop_words().is_empty());
    }

    #[test]
    fn every_language_the_server_announces_has_lexical_rules() {
        for id in qwen_syntax::lsp_language_ids() {
            assert_ne!(
                Lang::from_id(id),
                Lang::OTHER,
                "{id}: served without completion rules"
            );
        }
    }
}
