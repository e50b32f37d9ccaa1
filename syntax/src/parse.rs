//! Parsing with one reusable tree-sitter parser per thread (parsers are not `Sync`; creating one per file
//! would allocate on every keystroke).

use std::cell::RefCell;

use tree_sitter::{Parser, Tree};

use super::LanguageSpec;

/// Why a parse produced no tree.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The grammar could not be loaded (ABI mismatch between grammar crate and tree-sitter).
    #[error("grammar for {language} is incompatible with this tree-sitter: {message}")]
    IncompatibleGrammar {
        /// The language name.
        language: &'static str,
        /// tree-sitter's explanation.
        message: String,
    },
    /// tree-sitter returned no tree (it does so only when cancelled or misconfigured).
    #[error("tree-sitter returned no tree for a {language} file")]
    NoTree {
        /// The language name.
        language: &'static str,
    },
}

thread_local! {
    static PARSER: RefCell<(Option<&'static str>, Parser)> = RefCell::new((None, Parser::new()));
}

/// Parses `text`; with `old_tree` (already `edit`ed to match `text`) tree-sitter reuses unchanged subtrees.
/// Syntax errors do not fail: the tree contains ERROR nodes and everything tree-sitter could recover.
pub fn parse(
    spec: &'static LanguageSpec,
    text: &str,
    old_tree: Option<&Tree>,
) -> Result<Tree, ParseError> {
    PARSER.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (current, parser) = &mut *guard;
        if *current != Some(spec.name) {
            parser
                .set_language(&spec.grammar())
                .map_err(|e| ParseError::IncompatibleGrammar {
                    language: spec.name,
                    message: e.to_string(),
                })?;
            *current = Some(spec.name);
        }
        parser.parse(text, old_tree).ok_or(ParseError::NoTree {
            language: spec.name,
        })
    })
}
