//! Edits computed by `tasks::refactor` / `tasks::patch` → a `WorkspaceEdit` with versioned `documentChanges`.
//!
//! Every file is checked against what the edit was computed from, right before the edit leaves: an open
//! document must still hold the text the model saw (the edit then names its current version, so the client
//! refuses it if the document moves on before applying it), a closed file must still hold the same bytes on
//! disk.
//! If any file moved on, the whole edit is dropped with a message — a multi-file change applied in part, or
//! applied to a different text, is worse than none.
//!
//! Every edit that needs the user's look carries a change annotation with `needsConfirmation`, one mechanism
//! for two reasons: edits of editor, CI, build-tool or shell configuration (`FileEdit::confirm`) always do,
//! each under its own annotation naming what the file configures; with `codeActions.preview` (the default)
//! every other edit carries the one review annotation, so the editor shows the change for review (VS Code's
//! refactor preview) and applies it only when the user accepts. An editor that cannot ask (no
//! `changeAnnotationSupport` or no `documentChanges`) gets no configuration edit at all.

use std::sync::Arc;

use tower_lsp_server::ls_types::request::ApplyWorkspaceEdit;
use tower_lsp_server::ls_types::{
    AnnotatedTextEdit, ApplyWorkspaceEditParams, ApplyWorkspaceEditResponse, ChangeAnnotation,
    CreateFile, DocumentChangeOperation, DocumentChanges, OneOf, ResourceOp, TextDocumentEdit,
    TextEdit, Uri, WorkspaceEdit,
};

use super::documents::Document;
use super::edits::{minimal_edits, text_document_edit};
use super::position::lsp_range;
use super::state::State;
use qwen_tasks::FileEdit;

/// The one change annotation of a reviewed edit.
const REVIEW: &str = "qwen-ls.review";

/// Why an edit was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped(pub String);

fn file_uri(abs: &std::path::Path) -> Option<Uri> {
    Uri::from_file_path(abs)
}

/// Builds the edit for `files`, or says which file changed since the edit was computed.
pub fn workspace_edit(state: &State, files: &[FileEdit]) -> Result<WorkspaceEdit, Dropped> {
    let support = state.support();
    let review = support.change_annotations && state.settings().code_actions.preview;
    let (open, encoding): (Vec<Option<Document>>, _) = {
        let docs = state.documents.lock();
        (
            files.iter().map(|f| docs.find_file(&f.abs)).collect(),
            docs.encoding,
        )
    };
    let confirm: Vec<(&str, &str)> = files
        .iter()
        .filter_map(|f| Some((f.path.as_str(), f.confirm?)))
        .collect();
    let can_ask = support.document_changes && support.change_annotations;
    if !confirm.is_empty() && !can_ask {
        let list: Vec<String> = confirm
            .iter()
            .map(|(path, what)| format!("`{path}` ({what})"))
            .collect();
        return Err(Dropped(format!(
            "qwen-ls: the edit changes {}, which needs your confirmation, and this editor cannot ask for it; \
             nothing was applied",
            list.join(", ")
        )));
    }
    let mut annotations = std::collections::HashMap::new();
    let mut operations = Vec::new();
    let mut changes = std::collections::HashMap::new();
    for (file, doc) in files.iter().zip(open) {
        let changed = |why: &str| {
            Dropped(format!(
                "qwen-ls: `{}` {why} since the edit was computed; nothing was applied. Run the command again.",
                file.path
            ))
        };
        let (uri, version) = match (&doc, &file.before) {
            (Some(doc), Some(before)) => {
                // The text, not the version the task remembers, is the ground truth: the index may already
                // hold a newer version than the text the model was shown.
                if doc.text != before.as_str() {
                    return Err(changed("was edited"));
                }
                (doc.uri.clone(), Some(doc.version))
            }
            (Some(_), None) => return Err(changed("was created in the editor")),
            (None, before) => {
                let on_disk = std::fs::read(&file.abs).ok();
                match (before, on_disk) {
                    (Some(before), Some(bytes)) if bytes == before.as_bytes() => {}
                    (None, None) => {}
                    (None, Some(_)) => return Err(changed("was created")),
                    _ => return Err(changed("changed on disk")),
                }
                let uri = file_uri(&file.abs).ok_or_else(|| {
                    Dropped(format!("qwen-ls: cannot name `{}` as a URI", file.path))
                })?;
                (uri, None)
            }
        };
        let before = file.before.as_deref().unwrap_or("");
        if support.document_changes {
            let annotation = annotation_of(file, review).map(|(id, annotation)| {
                annotations.insert(id.clone(), annotation);
                id
            });
            if file.before.is_none() {
                operations.push(DocumentChangeOperation::Op(ResourceOp::Create(
                    CreateFile {
                        uri: uri.clone(),
                        options: None,
                        annotation_id: annotation.clone(),
                    },
                )));
            }
            let edit = text_document_edit(uri, version, before, &file.after, encoding);
            let edit = match annotation {
                Some(id) => annotated(edit, &id),
                None => edit,
            };
            operations.push(DocumentChangeOperation::Edit(edit));
        } else {
            let rope = ropey::Rope::from_str(before);
            let edits: Vec<TextEdit> = minimal_edits(before, &file.after)
                .into_iter()
                .map(|e| TextEdit::new(lsp_range(&rope, e.range, encoding), e.text))
                .collect();
            changes.insert(uri, edits);
        }
    }
    Ok(if support.document_changes {
        WorkspaceEdit {
            document_changes: Some(DocumentChanges::Operations(operations)),
            change_annotations: (!annotations.is_empty()).then_some(annotations),
            ..WorkspaceEdit::default()
        }
    } else {
        WorkspaceEdit {
            changes: Some(changes),
            ..WorkspaceEdit::default()
        }
    })
}

/// The annotation `file`'s edit carries, with its id: a configuration file's own (always), else the one review
/// annotation (with `review`: `codeActions.preview` and a client that can ask).
fn annotation_of(file: &FileEdit, review: bool) -> Option<(String, ChangeAnnotation)> {
    match file.confirm {
        Some(what) => Some((file.path.clone(), confirmation(&file.path, what))),
        None => review.then(|| {
            let annotation = ChangeAnnotation {
                label: "qwen-ls: the model's change".to_owned(),
                needs_confirmation: Some(true),
                description: Some(
                    "Review before it applies (setting codeActions.preview)".to_owned(),
                ),
            };
            (REVIEW.to_owned(), annotation)
        }),
    }
}

/// The annotation of an edit to a configuration file: the editor asks before applying it.
fn confirmation(path: &str, what: &str) -> ChangeAnnotation {
    ChangeAnnotation {
        label: format!("qwen-ls: edit {path}"),
        needs_confirmation: Some(true),
        description: Some(format!(
            "{path} configures {what}, which can run programs: apply only if you meant to"
        )),
    }
}

/// `edit` with every text edit under the annotation `id`.
fn annotated(edit: TextDocumentEdit, id: &str) -> TextDocumentEdit {
    let edits = edit
        .edits
        .into_iter()
        .map(|e| match e {
            OneOf::Left(text_edit) => OneOf::Right(AnnotatedTextEdit {
                text_edit,
                annotation_id: id.to_owned(),
            }),
            annotated => annotated,
        })
        .collect();
    TextDocumentEdit { edits, ..edit }
}

/// What a command reports: `{ "applied": bool, "message"? }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Whether the client applied the edit.
    pub applied: bool,
    /// Why not, or a note.
    pub message: Option<String>,
}

impl Applied {
    /// Not applied, because `message`.
    pub fn not(message: impl Into<String>) -> Applied {
        Applied {
            applied: false,
            message: Some(message.into()),
        }
    }

    /// The command result.
    pub fn json(&self) -> serde_json::Value {
        match &self.message {
            Some(m) => serde_json::json!({ "applied": self.applied, "message": m }),
            None => serde_json::json!({ "applied": self.applied }),
        }
    }
}

/// Sends `files` through `workspace/applyEdit` (after the checks of [`workspace_edit`]).
pub async fn apply_files(state: &Arc<State>, label: &str, files: &[FileEdit]) -> Applied {
    if files.is_empty() {
        return Applied::not("the model proposed no change");
    }
    if !state.support().apply_edit {
        return Applied::not("this editor does not support workspace/applyEdit");
    }
    let edit = match workspace_edit(state, files) {
        Ok(edit) => edit,
        Err(Dropped(message)) => {
            tracing::warn!("{message}");
            return Applied::not(message);
        }
    };
    let params = ApplyWorkspaceEditParams {
        label: Some(label.to_owned()),
        edit,
    };
    match state
        .client
        .send_request::<ApplyWorkspaceEdit>(params)
        .await
    {
        Ok(response) => from_response(response),
        Err(e) => Applied::not(format!("the editor did not apply the edit: {e}")),
    }
}

fn from_response(response: ApplyWorkspaceEditResponse) -> Applied {
    Applied {
        applied: response.applied,
        message: response
            .failure_reason
            .or_else(|| (!response.applied).then(|| "the editor refused the edit".to_owned())),
    }
}
