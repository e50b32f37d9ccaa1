//! Open documents as the editor sees them: a rope per URI, its version and language, and where it lives in
//! the workspace. Updated only by the front door (`front_door.rs`), synchronously and in arrival order, so a
//! request always reads the text its position was computed against.
//!
//! Each applied notification also yields the index [`Change`] it implies (byte offsets, same order, same
//! version), which the caller hands to the one index writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ropey::Rope;
use tower_lsp_server::ls_types::{
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams, Uri,
};

use super::position::{byte_range, Encoding};
use qwen_index::{Admission, Change, Gate, Mounts, SkipReason, TextEdit};
use qwen_tasks::DocumentPosition;

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
    /// Byte offset just after the text the last `didChange` inserted (where the cursor most likely is),
    /// `None` until an edit with a range arrives.
    pub last_edit: Option<usize>,
    /// Why the gate refuses this document (a secret, `.qwenignore`): no request about it is served.
    pub refused: Option<SkipReason>,
}

impl Document {
    /// Its file, or the URI's path for a document that is not a file.
    pub fn path(&self) -> PathBuf {
        self.file
            .clone()
            .unwrap_or_else(|| self.uri.path().as_str().into())
    }

    /// The document at `offset` (bytes), as the tasks take a position: its file (or the URI's path), its
    /// text and version, its language.
    pub fn position(&self, offset: usize) -> DocumentPosition {
        DocumentPosition {
            path: self.path(),
            text: Some(Arc::from(self.text.to_string())),
            offset,
            version: Some(self.version),
            language_id: self.language_id.clone(),
        }
    }
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
    /// Decides which documents are indexed and which are refused: the index's own gate (same rules, every
    /// folder judged by its own root and ignore files).
    gate: Gate,
    /// The position encoding agreed at `initialize`.
    pub encoding: Encoding,
}

impl Documents {
    /// An empty store for a workspace rooted at `root` (none: no document is indexed) whose documents pass
    /// `gate` (built for the same root).
    pub fn new(root: Option<PathBuf>, encoding: Encoding, gate: Gate) -> Documents {
        let canonical_root = root.as_ref().and_then(|r| r.canonicalize().ok());
        Documents {
            docs: HashMap::new(),
            root,
            canonical_root,
            mounts: Mounts::default(),
            gate,
            encoding,
        }
    }

    /// The workspace's folders changed: a new root, other folders and their gate; every open document is
    /// judged and placed again (its workspace path, `None` outside every folder or not indexed).
    pub fn refolder(&mut self, root: Option<PathBuf>, mounts: Mounts, gate: Gate) {
        self.canonical_root = root.as_ref().and_then(|r| r.canonicalize().ok());
        self.root = root;
        self.mounts = mounts;
        self.gate = gate;
        let placed: Vec<(Uri, Admission)> = self
            .docs
            .iter()
            .map(|(uri, d)| {
                (
                    uri.clone(),
                    self.admission(d.file.as_deref(), &d.text.to_string()),
                )
            })
            .collect();
        for (uri, admission) in placed {
            if let Some(doc) = self.docs.get_mut(&uri) {
                (doc.indexed_path, doc.refused) = placement(&uri, admission);
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

    /// Why the gate refuses the document at `uri`, if it is open and refused.
    pub fn refused(&self, uri: &Uri) -> Option<SkipReason> {
        self.docs.get(uri).and_then(|d| d.refused.clone())
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

    /// The open document and the position encoding.
    pub fn with_encoding(&self, uri: &Uri) -> Option<(Document, Encoding)> {
        Some((self.get(uri)?, self.encoding))
    }

    /// The open document, the position encoding and the name the suggestion log uses for it
    /// (workspace-relative path, else the URI).
    pub fn with_log_name(&self, uri: &Uri) -> Option<(Document, Encoding, String)> {
        let doc = self.get(uri)?;
        let name = self
            .relative_path_of_uri(uri)
            .unwrap_or_else(|| uri.as_str().to_owned());
        Some((doc, self.encoding, name))
    }

    /// The workspace-relative path of a `file:` URI inside the workspace.
    pub fn relative_path_of_uri(&self, uri: &Uri) -> Option<String> {
        self.relative_path(&file_path(uri)?)
    }

    /// What the gate says about a document's file and text (a document with no file is outside).
    fn admission(&self, file: Option<&Path>, text: &str) -> Admission {
        match file.map(|f| self.gate.check_path(f)) {
            Some(Admission::Index(path)) => match self.gate.check_text(text) {
                Ok(()) => Admission::Index(path),
                Err(reason) => Admission::Unindexed(reason),
            },
            Some(other) => other,
            None => Admission::Unindexed(SkipReason::Outside),
        }
    }

    /// `textDocument/didOpen`. Reopening an open URI replaces it.
    pub fn open(&mut self, params: DidOpenTextDocumentParams) -> Option<Change> {
        let item = params.text_document;
        let file = file_path(&item.uri);
        let admission = self.admission(file.as_deref(), &item.text);
        let (indexed_path, refused) = placement(&item.uri, admission);
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
            last_edit: None,
            refused,
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
                    doc.last_edit = Some(bytes.start + change.text.len());
                    edits.push(TextEdit {
                        range: bytes,
                        new_text: change.text,
                    });
                }
                None => {
                    let len = doc.text.len_bytes();
                    doc.text = Rope::from_str(&change.text);
                    doc.last_edit = None;
                    edits.push(TextEdit {
                        range: 0..len,
                        new_text: change.text,
                    });
                }
            }
        }
        doc.version = version;
        let Some(path) = doc.indexed_path.clone() else {
            return Ok(None);
        };
        let inserted = edits.iter().map(|e| e.new_text.as_str());
        if let Err(reason) = self.gate.check_edit(doc.text.len_bytes(), inserted) {
            // The text no longer passes the gate: the index goes back to the file on disk, as after a close.
            tracing::info!("{path}: no longer indexing the open document: {reason}");
            doc.indexed_path = None;
            return Ok(Some(Change::Close { path }));
        }
        Ok(Some(Change::Edit {
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

/// A document's index path and refusal from the gate's word (logged: a refusal loudly, once per judgement).
fn placement(uri: &Uri, admission: Admission) -> (Option<String>, Option<SkipReason>) {
    match admission {
        Admission::Index(path) => (Some(path.to_string()), None),
        Admission::Unindexed(reason) => {
            tracing::debug!("{}: not indexed: {reason}", uri.as_str());
            (None, None)
        }
        Admission::Refused(reason) => {
            tracing::warn!("{}: {reason}: refused (never read or sent)", uri.as_str());
            (None, Some(reason))
        }
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
        let gate = Gate::new(Some(&root), qwen_index::IndexConfig::default());
        let mut docs = Documents::new(Some(root), Encoding::Utf16, gate);
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
        let config = qwen_index::IndexConfig {
            max_file_bytes: 10,
            ..qwen_index::IndexConfig::default()
        };
        let gate = Gate::new(Some(dir.path()), config);
        let mut docs = Documents::new(Some(dir.path().to_path_buf()), Encoding::Utf8, gate);
        assert_eq!(open(&mut docs, "file:///somewhere/else.rs", "x"), None);
        assert_eq!(open(&mut docs, "untitled:Untitled-1", "x"), None);
        let big = format!("file://{}/big.rs", dir.path().display());
        assert_eq!(open(&mut docs, &big, "0123456789abc"), None);
        assert!(docs.get(&uri(&big)).is_some(), "still served as text");
        assert_eq!(docs.refused(&uri(&big)), None);
        // A document that grows past the limit leaves the index (which goes back to the disk).
        let small = format!("file://{}/small.rs", dir.path().display());
        assert!(open(&mut docs, &small, "fn a(){}").is_some());
        assert_eq!(
            change(&mut docs, &small, 2, &[(Some((0, 8, 0, 8)), "// more")]),
            Ok(Some(Change::Close {
                path: "small.rs".into()
            }))
        );
        assert_eq!(change(&mut docs, &small, 3, &[(None, "x")]), Ok(None));
    }

    #[test]
    fn secret_documents_are_refused_and_never_indexed() {
        let dir = tempfile::tempdir().expect("tmp");
        let gate = Gate::new(Some(dir.path()), qwen_index::IndexConfig::default());
        let mut docs = Documents::new(Some(dir.path().to_path_buf()), Encoding::Utf8, gate);
        for name in [".env", "deploy/.ENV.production", "infra/prod.tfvars"] {
            let u = format!("file://{}/{name}", dir.path().display());
            assert_eq!(open(&mut docs, &u, "TOKEN=hunter2"), None, "{name}");
            assert_eq!(docs.refused(&uri(&u)), Some(SkipReason::Secret), "{name}");
            assert_eq!(change(&mut docs, &u, 2, &[(None, "TOKEN=x")]), Ok(None));
            assert!(docs.replay().is_empty());
        }
        // Outside the workspace too: a key file opened from anywhere.
        assert_eq!(
            open(&mut docs, "file:///home/me/.ssh/config", "Host x"),
            None
        );
        assert_eq!(
            docs.refused(&uri("file:///home/me/.ssh/config")),
            Some(SkipReason::Secret)
        );
    }
}
