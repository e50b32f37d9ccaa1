//! Syntax layer: tree-sitter grammars and their tag queries (`syntax/queries/<lang>/tags.scm`, embedded).
//!
//! Pure functions only: text → tree → tags. No files, no index state, no logging of user data. Adding a language
//! is one row in [`language::LANGUAGES`] plus one query folder.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod edit;
pub mod items;
pub mod language;
pub mod parse;
pub mod tags;

pub use edit::{input_edit, InputEdit};
pub use items::AppendedItems;
pub use language::{
    fence_language, language_for_id, language_for_name, language_for_path, lsp_language_ids,
    LanguageSpec, Lexical, QueryCompileError, LANGUAGES,
};
pub use parse::{parse, ParseError};
pub use tags::{
    assign_scopes, extract_tags, Definition, DefinitionKind, Import, Reference, ReferenceKind, Tags,
};
