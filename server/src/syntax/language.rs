//! The language table: one row per supported language (grammar, file extensions, embedded tag query).
//!
//! Queries are compiled lazily, once per process, the first time a file of that language is tagged.

use std::path::Path;
use std::sync::OnceLock;

use tree_sitter::{Language, Query, QueryError};

/// One supported language: how to recognise its files, its grammar, and its tag query source.
pub struct LanguageSpec {
    /// Stable name, used in the persistent cache and in CLI output (e.g. `rust`, `tsx`).
    pub name: &'static str,
    /// File name extensions (without the dot) that select this language.
    pub extensions: &'static [&'static str],
    /// The LSP `languageId`s of its documents (what editors call it): the server announces these at
    /// `initialize` and the clients register for exactly them.
    pub lsp_ids: &'static [&'static str],
    grammar: fn() -> Language,
    tags_source: &'static str,
    compiled: OnceLock<Result<CompiledQuery, QueryCompileError>>,
}

/// A tag query that does not compile against its grammar (a bug in `server/queries/<lang>/tags.scm`; the
/// language's files are then indexed as text only).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{language} tags.scm: {message}")]
pub struct QueryCompileError {
    /// The language.
    pub language: &'static str,
    /// tree-sitter's message (row, column and kind of the error).
    pub message: String,
}

/// A compiled tag query plus what the tagger needs to interpret its captures quickly.
pub struct CompiledQuery {
    /// The compiled query.
    pub query: Query,
    /// The role of each capture index (parallel to `query.capture_names()`).
    pub capture_roles: Vec<CaptureRole>,
}

/// What a capture name means to the tagger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureRole {
    /// `@name`: the identifier of a definition or reference.
    Name,
    /// `@definition.<kind>`: the whole defining node.
    Definition(super::DefinitionKind),
    /// `@reference.<kind>`: the whole referencing node.
    Reference(super::ReferenceKind),
    /// `@import`: a module path as written in an import statement.
    Import,
    /// Anything else (helper captures such as `@_require` used only by predicates).
    Ignored,
}

/// Languages are identified by name (rows are unique by name).
impl PartialEq for LanguageSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for LanguageSpec {}

impl std::fmt::Debug for LanguageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl LanguageSpec {
    const fn new(
        name: &'static str,
        extensions: &'static [&'static str],
        lsp_ids: &'static [&'static str],
        grammar: fn() -> Language,
        tags_source: &'static str,
    ) -> Self {
        Self {
            name,
            extensions,
            lsp_ids,
            grammar,
            tags_source,
            compiled: OnceLock::new(),
        }
    }

    /// The tree-sitter grammar.
    pub fn grammar(&self) -> Language {
        (self.grammar)()
    }

    /// The embedded tag query source (`server/queries/<lang>/tags.scm`).
    pub fn tags_source(&self) -> &'static str {
        self.tags_source
    }

    /// The compiled tag query; an error names the language and the query position that failed to compile.
    pub fn tags_query(&self) -> Result<&CompiledQuery, &QueryCompileError> {
        self.compiled
            .get_or_init(|| {
                compile(self).map_err(|e| QueryCompileError {
                    language: self.name,
                    message: e.to_string(),
                })
            })
            .as_ref()
    }
}

fn compile(spec: &LanguageSpec) -> Result<CompiledQuery, QueryError> {
    let query = Query::new(&spec.grammar(), spec.tags_source)?;
    let capture_roles = query
        .capture_names()
        .iter()
        .map(|name| role_of(name))
        .collect();
    Ok(CompiledQuery {
        query,
        capture_roles,
    })
}

fn role_of(capture: &str) -> CaptureRole {
    if capture == "name" {
        CaptureRole::Name
    } else if capture == "import" {
        CaptureRole::Import
    } else if let Some(kind) = capture.strip_prefix("definition.") {
        CaptureRole::Definition(super::DefinitionKind::from_tag(kind))
    } else if let Some(kind) = capture.strip_prefix("reference.") {
        CaptureRole::Reference(super::ReferenceKind::from_tag(kind))
    } else {
        CaptureRole::Ignored
    }
}

/// Declares a table row whose query lives in `server/queries/<folder>/tags.scm`.
macro_rules! language {
    ($name:literal, [$($ext:literal),*], [$($id:literal),*], $grammar:expr, $folder:literal) => {
        LanguageSpec::new(
            $name,
            &[$($ext),*],
            &[$($id),*],
            || $grammar.into(),
            include_str!(concat!("../../queries/", $folder, "/tags.scm")),
        )
    };
}

/// Every supported language. Order is irrelevant; names must be unique.
pub static LANGUAGES: [LanguageSpec; 6] = [
    language!("rust", ["rs"], ["rust"], tree_sitter_rust::LANGUAGE, "rust"),
    language!(
        "python",
        ["py", "pyi"],
        ["python"],
        tree_sitter_python::LANGUAGE,
        "python"
    ),
    language!(
        "javascript",
        ["js", "mjs", "cjs", "jsx"],
        ["javascript", "javascriptreact"],
        tree_sitter_javascript::LANGUAGE,
        "javascript"
    ),
    language!(
        "typescript",
        ["ts", "mts", "cts"],
        ["typescript"],
        tree_sitter_typescript::LANGUAGE_TYPESCRIPT,
        "typescript"
    ),
    language!(
        "tsx",
        ["tsx"],
        ["typescriptreact"],
        tree_sitter_typescript::LANGUAGE_TSX,
        "typescript"
    ),
    language!("go", ["go"], ["go"], tree_sitter_go::LANGUAGE, "go"),
];

/// The language of a path, by extension; `None` for files indexed as plain text.
pub fn language_for_path(path: &Path) -> Option<&'static LanguageSpec> {
    let ext = path.extension()?.to_str()?;
    LANGUAGES
        .iter()
        .find(|spec| spec.extensions.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

/// Every LSP `languageId` the table serves, in table order: what the server announces and the clients
/// register for.
pub fn lsp_language_ids() -> Vec<&'static str> {
    LANGUAGES
        .iter()
        .flat_map(|spec| spec.lsp_ids.iter().copied())
        .collect()
}

/// The language with this stable name (as stored in the cache).
pub fn language_for_name(name: &str) -> Option<&'static LanguageSpec> {
    LANGUAGES.iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_language_ids_are_the_tables_and_distinct() {
        let ids = lsp_language_ids();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "an LSP id in two rows: {ids:?}");
        for spec in &LANGUAGES {
            assert!(!spec.lsp_ids.is_empty(), "{}: no LSP id", spec.name);
            for id in spec.lsp_ids {
                assert!(ids.contains(id));
            }
        }
        assert_eq!(
            ids,
            [
                "rust",
                "python",
                "javascript",
                "javascriptreact",
                "typescript",
                "typescriptreact",
                "go"
            ]
        );
    }

    #[test]
    fn every_query_compiles_against_its_grammar() {
        for spec in &LANGUAGES {
            let compiled = spec.tags_query().unwrap_or_else(|e| panic!("{e}"));
            let roles = &compiled.capture_roles;
            assert!(
                roles.contains(&CaptureRole::Name),
                "{}: no @name",
                spec.name
            );
            // JavaScript has no type syntax: its type references are `new X` and `extends X`.
            assert!(
                roles.iter().any(|r| matches!(
                    r,
                    CaptureRole::Reference(
                        super::super::ReferenceKind::Type | super::super::ReferenceKind::Class
                    )
                )),
                "{}: no type references",
                spec.name
            );
            assert!(
                roles.iter().any(|r| matches!(
                    r,
                    CaptureRole::Import
                        | CaptureRole::Reference(super::super::ReferenceKind::Import)
                )),
                "{}: no import references",
                spec.name
            );
        }
    }

    #[test]
    fn names_and_extensions_are_unique() {
        let mut names: Vec<_> = LANGUAGES.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), LANGUAGES.len());
        let mut exts: Vec<_> = LANGUAGES.iter().flat_map(|s| s.extensions.iter()).collect();
        let total = exts.len();
        exts.sort_unstable();
        exts.dedup();
        assert_eq!(exts.len(), total);
    }

    #[test]
    fn languages_are_found_by_extension() {
        let name = |p: &str| language_for_path(Path::new(p)).map(|s| s.name);
        assert_eq!(name("src/main.rs"), Some("rust"));
        assert_eq!(name("a/b.TSX"), Some("tsx"));
        assert_eq!(name("x.go"), Some("go"));
        assert_eq!(name("README.md"), None);
        assert_eq!(name("Makefile"), None);
    }
}
