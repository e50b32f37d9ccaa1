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
    /// Languages of one family resolve names across each other (TypeScript imports JavaScript and vice
    /// versa): the family's name.
    pub family: &'static str,
    /// What completion post-processing needs to know of its lexing and layout.
    pub lexical: Lexical,
    grammar: fn() -> Language,
    /// The row's own tag query, then the ones it inherits (merged section by section: `tags_source`).
    tags_sources: &'static [&'static str],
    compiled: OnceLock<Result<CompiledQuery, QueryCompileError>>,
}

/// The lexical facts completion post-processing needs: comment and string syntax for bracket tracking, and
/// the line-start words that begin the next top-level item. Languages without a row get [`Lexical::GENERIC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexical {
    /// Words that, at the very start of a line (column 0), begin a new top-level item: a completion that has
    /// already produced some text stops before such a line. Imports, constants and variables are left out on
    /// purpose: a completion that writes several of those in a row is common and useful. They play the role
    /// of the `"\ndef "`-style stop strings other servers send to the model, but are matched at line starts
    /// so CRLF documents work too.
    pub line_stop_words: &'static [&'static str],
    /// Keywords that continue a compound statement at the indentation of its opener (Python `else:` after an
    /// `if` body): a line starting with one is not the start of a sibling item.
    pub continuation_keywords: &'static [&'static str],
    /// `#` starts a line comment (otherwise `//` and `/* */` do).
    pub hash_comments: bool,
    /// `"""`/`'''` triple-quoted strings exist.
    pub triple_quotes: bool,
    /// A single quote may start a lifetime or label rather than a character literal (Rust).
    pub lifetime_quotes: bool,
    /// Backticks delimit (template or raw) strings.
    pub backtick_strings: bool,
    /// A backslash escapes inside backtick strings (JavaScript templates; not Go's raw strings).
    pub backtick_escapes: bool,
    /// Ordinary quoted strings may span lines (Rust string literals can; elsewhere an unterminated string
    /// ends at the newline, which limits the damage of a quote misread).
    pub multiline_strings: bool,
    /// Blocks are delimited by indentation rather than braces.
    pub indentation_scoped: bool,
}

impl Lexical {
    /// C-like lexing, no stop words: languages without a row.
    pub const GENERIC: Lexical = Lexical {
        line_stop_words: &[],
        continuation_keywords: &["else"],
        hash_comments: false,
        triple_quotes: false,
        lifetime_quotes: false,
        backtick_strings: false,
        backtick_escapes: true,
        multiline_strings: false,
        indentation_scoped: false,
    };
}

const RUST: Lexical = Lexical {
    line_stop_words: &[
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
    lifetime_quotes: true,
    multiline_strings: true,
    ..Lexical::GENERIC
};

const PYTHON: Lexical = Lexical {
    line_stop_words: &["def ", "class ", "async def ", "if __name__", "@"],
    continuation_keywords: &["else", "elif", "except", "finally", "case"],
    hash_comments: true,
    triple_quotes: true,
    indentation_scoped: true,
    ..Lexical::GENERIC
};

const JAVASCRIPT: Lexical = Lexical {
    line_stop_words: &[
        "function ",
        "export ",
        "class ",
        "async function ",
        "module.exports",
    ],
    backtick_strings: true,
    ..Lexical::GENERIC
};

const TYPESCRIPT: Lexical = Lexical {
    line_stop_words: &[
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
    ..JAVASCRIPT
};

const GO: Lexical = Lexical {
    line_stop_words: &["func ", "type "],
    backtick_strings: true,
    backtick_escapes: false,
    ..Lexical::GENERIC
};

const JAVA: Lexical = Lexical {
    line_stop_words: &[
        "public ",
        "class ",
        "interface ",
        "enum ",
        "record ",
        "abstract ",
        "final ",
        "@",
    ],
    ..Lexical::GENERIC
};

/// A tag query that does not compile against its grammar (a bug in `syntax/queries/<lang>/tags.scm`; the
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
        family: &'static str,
        lexical: Lexical,
        grammar: fn() -> Language,
        tags_sources: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            extensions,
            lsp_ids,
            family,
            lexical,
            grammar,
            tags_sources,
            compiled: OnceLock::new(),
        }
    }

    /// The tree-sitter grammar.
    pub fn grammar(&self) -> Language {
        (self.grammar)()
    }

    /// The tag query: the row's own query and the ones it inherits, merged section by section (`; ---- name
    /// ----` lines), own patterns first in each section — the first pattern that captures a node wins, and
    /// every definition pattern must come before every reference pattern.
    pub fn tags_source(&self) -> String {
        merge_sections(self.tags_sources)
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
    let query = Query::new(&spec.grammar(), &spec.tags_source())?;
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

/// The sections of `sources` (each a run of lines after a `; ---- name ----` line), in the order they first
/// appear, each the concatenation of that section of every source in order. Lines before a source's first
/// section (its header comment) are left out.
fn merge_sections(sources: &[&str]) -> String {
    let mut sections: Vec<(&str, String)> = Vec::new();
    for source in sources {
        let mut current: Option<usize> = None;
        for line in source.lines() {
            if let Some(name) = line
                .strip_prefix("; ---- ")
                .and_then(|l| l.strip_suffix(" ----"))
            {
                let index = match sections.iter().position(|(n, _)| *n == name) {
                    Some(index) => index,
                    None => {
                        sections.push((name, String::new()));
                        sections.len() - 1
                    }
                };
                current = Some(index);
            } else if let Some(index) = current {
                sections[index].1.push_str(line);
                sections[index].1.push('\n');
            }
        }
    }
    sections
        .into_iter()
        .map(|(name, body)| format!("; ---- {name} ----\n{body}"))
        .collect()
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

/// Declares a table row whose query lives in `syntax/queries/<folder>/tags.scm`, after which come the
/// queries of the folders it inherits.
macro_rules! language {
    (
        $name:literal, [$($ext:literal),*], [$($id:literal),*], family $family:literal, $lexical:expr,
        $grammar:expr, $folder:literal $(inherits $($parent:literal),+)?
    ) => {
        LanguageSpec::new(
            $name,
            &[$($ext),*],
            &[$($id),*],
            $family,
            $lexical,
            || $grammar.into(),
            &[
                include_str!(concat!("../queries/", $folder, "/tags.scm")),
                $($(include_str!(concat!("../queries/", $parent, "/tags.scm")),)+)?
            ],
        )
    };
}

/// Every supported language. Order is irrelevant; names must be unique. Adding a language is a row here
/// plus its `syntax/queries/<folder>/tags.scm`.
pub static LANGUAGES: [LanguageSpec; 7] = [
    language!("rust", ["rs"], ["rust"], family "rust", RUST, tree_sitter_rust::LANGUAGE, "rust"),
    language!(
        "python",
        ["py", "pyi"],
        ["python"],
        family "python",
        PYTHON,
        tree_sitter_python::LANGUAGE,
        "python"
    ),
    language!(
        "javascript",
        ["js", "mjs", "cjs", "jsx"],
        ["javascript", "javascriptreact"],
        family "javascript",
        JAVASCRIPT,
        tree_sitter_javascript::LANGUAGE,
        "javascript" inherits "ecmascript"
    ),
    language!(
        "typescript",
        ["ts", "mts", "cts"],
        ["typescript"],
        family "javascript",
        TYPESCRIPT,
        tree_sitter_typescript::LANGUAGE_TYPESCRIPT,
        "typescript" inherits "ecmascript"
    ),
    language!(
        "tsx",
        ["tsx"],
        ["typescriptreact"],
        family "javascript",
        TYPESCRIPT,
        tree_sitter_typescript::LANGUAGE_TSX,
        "typescript" inherits "ecmascript"
    ),
    language!("go", ["go"], ["go"], family "go", GO, tree_sitter_go::LANGUAGE, "go"),
    language!(
        "java",
        ["java"],
        ["java"],
        family "java",
        JAVA,
        tree_sitter_java::LANGUAGE,
        "java"
    ),
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

/// The info string of a Markdown code fence around the file at `path`: the table's name for a language it
/// knows, else the file's extension (empty without one).
pub fn fence_language(path: &Path) -> &str {
    match language_for_path(path) {
        Some(spec) => spec.name,
        None => path.extension().and_then(|e| e.to_str()).unwrap_or(""),
    }
}

/// The language of an LSP `languageId` or a file extension (case-insensitive); `None` for one without a row.
pub fn language_for_id(id: &str) -> Option<&'static LanguageSpec> {
    let id = id.trim();
    LANGUAGES.iter().find(|spec| {
        spec.lsp_ids
            .iter()
            .chain(spec.extensions)
            .any(|known| known.eq_ignore_ascii_case(id))
    })
}

/// The language with this stable name (as stored in the cache).
pub fn language_for_name(name: &str) -> Option<&'static LanguageSpec> {
    LANGUAGES.iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inherited_queries_merge_section_by_section_own_patterns_first() {
        let own = "; header\n; ---- definitions ----\n(a)\n; ---- references ----\n(b)\n";
        let parent = "; other header\n; ---- definitions ----\n(c)\n; ---- imports ----\n(d)\n";
        assert_eq!(
            merge_sections(&[own, parent]),
            "; ---- definitions ----\n(a)\n(c)\n; ---- references ----\n(b)\n; ---- imports ----\n(d)\n"
        );
        // Every row's merged query compiles against its grammar.
        for spec in &LANGUAGES {
            assert!(
                spec.tags_query().is_ok(),
                "{}: {:?}",
                spec.name,
                spec.tags_query().err()
            );
        }
    }

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
                "go",
                "java"
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
