//! Open documents as the editor sees them: a rope per URI, its version and language, and where it lives in
//! the workspace. Updated only by the front door (`front_door.rs`), synchronously and in arrival order, so a
//! request always reads the text its position was computed against.
//!
//! Each applied notification also yields the index [`Change`] it implies (byte offsets, same order, same
//! version), which the caller hands to the one index writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ropey::Rope;
use tower_lsp_server::ls_types::{
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams, Uri,
};

use super::position::{byte_range, Encoding};
use crate::index::{Change, Mounts, TextEdit};

/// One open document.
#[derive(Clone, Debug)]
pub struct Document {
    /// The URI exactly as the client sent it (edits sent back must use the same string).
    pub uri: Uri,
    /// The editor's language id (`rust`, `python`, …).
    pub language_id: String,
    /// The editor's version of `text`.
    pub version: i32,
    /// The text (cloning is O(1)).
    pub text: Rope,
    /// The absolute file path, for `file:` URIs.
    pub file: Option<PathBuf>,
    /// The workspace-relative path (`/`-separated) when the document is inside the workspace and indexed.
    pub indexed_path: Option<String>,
}

/// Why a notification was not applied (logged; a notification has no reply).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncError {
    /// `didChange`/`didClose` for a document that was never opened.
    #[error("{0} is not open")]
    NotOpen(String),
    /// A `didChange` whose version is not newer than the document's.
    #[error("{uri}: ignoring change to version {got}, the document is already at {have}")]
    Stale {
        /// The document.
        uri: String,
        /// Its version.
        have: i32,
        /// The notification's version.
        got: i32,
    },
}

/// All open documents, plus what is needed to place them in the workspace.
#[derive(Debug, Default)]
pub struct Documents {
    docs: HashMap<Uri, Document>,
    root: Option<PathBuf>,
    canonical_root: Option<PathBuf>,
    /// The other workspace folders (their files' workspace paths start with `@name/`).
    mounts: Mounts,
    /// Documents larger than this (bytes, at open) are served as text but not indexed.
    max_indexed_bytes: usize,
    /// The position encoding agreed at `initialize`.
    pub encoding: Encoding,
}

impl Documents {
    /// An empty store for a workspace rooted at `root` (none: no document is indexed).
    pub fn new(root: Option<PathBuf>, encoding: Encoding, max_indexed_bytes: usize) -> Documents {
        let canonical_root = root.as_ref().and_then(|r| r.canonicalize().ok());
        Documents {
            docs: HashMap::new(),
            root,
            canonical_root,
            mounts: Mounts::default(),
            max_indexed_bytes,
            encoding,
        }
    }

    /// The workspace's folders changed: a new root and other folders; every open document is placed again
    /// (its workspace path, `None` outside every folder).
    pub fn refolder(&mut self, root: Option<PathBuf>, mounts: Mounts) {
        self.canonical_root = root.as_ref().and_then(|r| r.canonicalize().ok());
        self.root = root;
        self.mounts = mounts;
        let placed: Vec<(Uri, Option<String>)> = self
            .docs
            .iter()
            .map(|(uri, d)| {
                let path = d
                    .file
                    .as_deref()
                    .filter(|_| d.text.len_bytes() <= self.max_indexed_bytes)
                    .and_then(|f| self.relative_path(f));
                (uri.clone(), path)
            })
            .collect();
        for (uri, path) in placed {
            if let Some(doc) = self.docs.get_mut(&uri) {
                doc.indexed_path = path;
            }
        }
    }

    /// The workspace root, if any.
    pub fn root(&self) -> Option<&Path> {
        self.canonical_root.as_deref().or(self.root.as_deref())
    }

    /// A copy of an open document (O(1) in its size).
    pub fn get(&self, uri: &Uri) -> Option<Document> {
        self.docs.get(uri).cloned()
    }

    /// The open document whose file is `path`, if any.
    pub fn find_file(&self, path: &Path) -> Option<Document> {
        self.docs
            .values()
            .find(|d| d.file.as_deref() == Some(path))
            .cloned()
    }

    /// The version of an open document.
    pub fn version(&self, uri: &Uri) -> Option<i32> {
        self.docs.get(uri).map(|d| d.version)
    }

    /// Every open document that is indexed, as `Open` changes (to replay into a freshly loaded index).
    pub fn replay(&self) -> Vec<Change> {
        self.docs
            .values()
            .filter_map(|d| {
                Some(Change::Open {
                    path: d.indexed_path.clone()?,
                    version: d.version,
                    text: d.text.to_string(),
                })
            })
            .collect()
    }

    /// The workspace-relative path of a file, when it is inside the workspace.
    pub fn relative_path(&self, file: &Path) -> Option<String> {
        if let Some(mounted) = self.mounts.index_path(file).or_else(|| {
            let canonical = file.parent()?.canonicalize().ok()?.join(file.file_name()?);
            self.mounts.index_path(&canonical)
        }) {
            return Some(mounted);
        }
        let roots = [self.root.as_deref(), self.canonical_root.as_deref()];
        let direct = roots
            .into_iter()
            .flatten()
            .find_map(|root| file.strip_prefix(root).ok().map(Path::to_path_buf));
        let rel = match direct {
            Some(rel) => rel,
            // A path through a link to the workspace (e.g. /tmp vs /private/tmp): compare canonical forms.
            None => file
                .canonicalize()
                .ok()?
                .strip_prefix(self.canonical_root.as_deref()?)
                .ok()?
                .to_path_buf(),
        };
        let parts: Option<Vec<&str>> = rel
            .components()
            .map(|c| match c {
                std::path::Component::Normal(part) => part.to_str(),
                _ => None,
            })
            .collect();
        let joined = parts?.join("/");
        (!joined.is_empty()).then_some(joined)
    }

    /// The workspace-relative path of a `file:` URI inside the workspace.
    pub fn relative_path_of_uri(&self, uri: &Uri) -> Option<String> {
        self.relative_path(&file_path(uri)?)
    }

    /// `textDocument/didOpen`. Reopening an open URI replaces it.
    pub fn open(&mut self, params: DidOpenTextDocumentParams) -> Option<Change> {
        let item = params.text_document;
        let file = file_path(&item.uri);
        let indexed_path = file
            .as_deref()
            .filter(|_| item.text.len() <= self.max_indexed_bytes)
            .and_then(|f| self.relative_path(f));
        let change = indexed_path.clone().map(|path| Change::Open {
            path,
            version: item.version,
            text: item.text.clone(),
        });
        let doc = Document {
            uri: item.uri.clone(),
            language_id: item.language_id,
            version: item.version,
            text: Rope::from_str(&item.text),
            file,
            indexed_path,
        };
        self.docs.insert(item.uri, doc);
        change
    }

    /// `textDocument/didChange`: applies the content changes in order; returns the index change.
    pub fn change(
        &mut self,
        params: DidChangeTextDocumentParams,
    ) -> Result<Option<Change>, SyncError> {
        let uri = params.text_document.uri;
        let version = params.text_document.version;
        let encoding = self.encoding;
        let doc = self
            .docs
            .get_mut(&uri)
            .ok_or_else(|| SyncError::NotOpen(uri.as_str().to_owned()))?;
        if version <= doc.version {
            return Err(SyncError::Stale {
                uri: uri.as_str().to_owned(),
                have: doc.version,
                got: version,
            });
        }
        let mut edits = Vec::with_capacity(params.content_changes.len());
        for change in params.content_changes {
            match change.range {
                Some(range) => {
                    let bytes = byte_range(&doc.text, range, encoding);
                    let chars =
                        doc.text.byte_to_char(bytes.start)..doc.text.byte_to_char(bytes.end);
                    doc.text.remove(chars.clone());
                    doc.text.insert(chars.start, &change.text);
                    edits.push(TextEdit {
                        range: bytes,
                        new_text: change.text,
                    });
                }
                None => {
                    let len = doc.text.len_bytes();
                    doc.text = Rope::from_str(&change.text);
                    edits.push(TextEdit {
                        range: 0..len,
                        new_text: change.text,
                    });
                }
            }
        }
        doc.version = version;
        Ok(doc.indexed_path.clone().map(|path| Change::Edit {
            path,
            version,
            edits,
        }))
    }

    /// `textDocument/didClose`: forgets the document; the index goes back to the file on disk.
    pub fn close(
        &mut self,
        params: DidCloseTextDocumentParams,
    ) -> Result<Option<Change>, SyncError> {
        let uri = params.text_document.uri;
        let doc = self
            .docs
            .remove(&uri)
            .ok_or_else(|| SyncError::NotOpen(uri.as_str().to_owned()))?;
        Ok(doc.indexed_path.map(|path| Change::Close { path }))
    }
}

/// The file path of a `file:` URI.
pub fn file_path(uri: &Uri) -> Option<PathBuf> {
    let is_file = uri.scheme().as_str().eq_ignore_ascii_case("file");
    if !is_file {
        return None;
    }
    uri.to_file_path().map(|p| p.into_owned())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use tower_lsp_server::ls_types::{
        Position, Range, TextDocumentContentChangeEvent, TextDocumentIdentifier, TextDocumentItem,
        VersionedTextDocumentIdentifier,
    };

    use super::*;

    fn uri(s: &str) -> Uri {
        Uri::from_str(s).expect("uri")
    }

    fn open(docs: &mut Documents, u: &str, text: &str) -> Option<Change> {
        docs.open(DidOpenTextDocumentParams {
            text_document: TextDocumentItem::new(uri(u), "rust".into(), 1, text.into()),
        })
    }

    /// (start line, start column, end line, end column); `None`: the whole text.
    type Span = Option<(u32, u32, u32, u32)>;

    fn change(
        docs: &mut Documents,
        u: &str,
        version: i32,
        edits: &[(Span, &str)],
    ) -> Result<Option<Change>, SyncError> {
        docs.change(DidChangeTextDocumentParams {
            text_document: VersionedTextDocumentIdentifier::new(uri(u), version),
            content_changes: edits
                .iter()
                .map(|(r, t)| TextDocumentContentChangeEvent {
                    range: r
                        .map(|(a, b, c, d)| Range::new(Position::new(a, b), Position::new(c, d))),
                    range_length: None,
                    text: (*t).into(),
                })
                .collect(),
        })
    }

    #[test]
    fn incremental_changes_in_utf16_become_byte_edits() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().to_path_buf();
        let file = format!("file://{}/src/a.rs", root.display());
        let mut docs = Documents::new(Some(root), Encoding::Utf16, 1 << 20);
        let opened = open(&mut docs, &file, "let s = \"😀\";\nx\n");
        assert!(
            matches!(opened, Some(Change::Open { ref path, version: 1, .. }) if path == "src/a.rs")
        );
        // Two changes in one notification, the second in the coordinates left by the first.
        let got = change(
            &mut docs,
            &file,
            2,
            &[(Some((0, 11, 0, 11)), "!"), (Some((1, 0, 1, 1)), "yz")],
        )
        .expect("applies");
        let doc = docs.get(&uri(&file)).expect("open");
        assert_eq!(doc.text.to_string(), "let s = \"😀!\";\nyz\n");
        assert_eq!(
            got,
            Some(Change::Edit {
                path: "src/a.rs".into(),
                version: 2,
                edits: vec![
                    TextEdit {
                        range: 13..13,
                        new_text: "!".into()
                    },
                    TextEdit {
                        range: 17..18,
                        new_text: "yz".into()
                    },
                ],
            })
        );
        // Stale and unopened documents are refused without touching anything.
        assert!(matches!(
            change(&mut docs, &file, 2, &[(None, "zzz")]),
            Err(SyncError::Stale { .. })
        ));
        assert!(matches!(
            change(&mut docs, "file:///elsewhere.rs", 9, &[(None, "zzz")]),
            Err(SyncError::NotOpen(_))
        ));
        // A whole-text replacement.
        change(&mut docs, &file, 3, &[(None, "fn main() {}\n")]).expect("applies");
        assert_eq!(
            docs.get(&uri(&file)).expect("open").text.to_string(),
            "fn main() {}\n"
        );
        let closed = docs.close(DidCloseTextDocumentParams {
            text_document: TextDocumentIdentifier::new(uri(&file)),
        });
        assert_eq!(
            closed,
            Ok(Some(Change::Close {
                path: "src/a.rs".into()
            }))
        );
    }

    #[test]
    fn documents_outside_the_workspace_or_too_big_are_not_indexed() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut docs = Documents::new(Some(dir.path().to_path_buf()), Encoding::Utf8, 10);
        assert_eq!(open(&mut docs, "file:///somewhere/else.rs", "x"), None);
        assert_eq!(open(&mut docs, "untitled:Untitled-1", "x"), None);
        let big = format!("file://{}/big.rs", dir.path().display());
        assert_eq!(open(&mut docs, &big, "0123456789abc"), None);
        assert!(docs.get(&uri(&big)).is_some(), "still served as text");
    }
}
