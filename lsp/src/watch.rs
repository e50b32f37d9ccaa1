//! Files changed outside the editor (a `git checkout`, a code generator, `qwen-ls patch --apply`): the server
//! asks the client to watch the files of the languages it indexes and the ignore files
//! (`workspace/didChangeWatchedFiles`, registered dynamically after `initialized`), and turns each event into
//! an index [`Change`] queued behind the editor's own changes — the index's incremental path, never a reload.

use serde_json::json;
use tower_lsp_server::ls_types::{
    DidChangeWatchedFilesParams, FileChangeType, FileEvent, Registration,
};

use super::documents::{file_path, Documents};
use qwen_index::{Change, IndexConfig};
use qwen_syntax::LANGUAGES;
use tower_lsp_server::Client;

/// The registration id (one registration for every watcher).
const REGISTRATION_ID: &str = "qwen-ls/watched-files";

/// Ignore files whose change re-decides the files under their directory (the walk's rules).
fn ignore_file_names() -> Vec<String> {
    let mut names = vec![
        ".gitignore".to_owned(),
        ".ignore".to_owned(),
        IndexConfig::default().ignore_file_name,
    ];
    names.dedup();
    names
}

/// The glob patterns the client watches: every extension of the language table, and the ignore files.
pub fn glob_patterns() -> Vec<String> {
    let extensions: Vec<&str> = LANGUAGES
        .iter()
        .flat_map(|spec| spec.extensions.iter().copied())
        .collect();
    let mut globs = vec![format!("**/*.{{{}}}", extensions.join(","))];
    globs.extend(ignore_file_names().iter().map(|name| format!("**/{name}")));
    globs
}

/// `client/registerCapability` for `workspace/didChangeWatchedFiles`; only for clients that announced
/// dynamic registration for it. A refusal is logged: the index then follows the editor's own edits only.
pub async fn register(client: &Client, client_watches_files: bool) {
    if !client_watches_files {
        tracing::info!(
            "the client does not watch files for servers: changes outside the editor are not seen"
        );
        return;
    }
    let watchers: Vec<_> = glob_patterns()
        .into_iter()
        .map(|glob| json!({ "globPattern": glob }))
        .collect();
    let registration = Registration {
        id: REGISTRATION_ID.to_owned(),
        method: "workspace/didChangeWatchedFiles".to_owned(),
        register_options: Some(json!({ "watchers": watchers })),
    };
    match client.register_capability(vec![registration]).await {
        Ok(()) => tracing::info!("watching {:?}", glob_patterns()),
        Err(e) => tracing::warn!(
            "the client refused to watch files ({e}): changes outside the editor are not seen"
        ),
    }
}

/// The index change for one event, if the file is inside the workspace.
fn change_for(documents: &Documents, event: &FileEvent) -> Option<Change> {
    let path = file_path(&event.uri)?;
    let relative = documents.relative_path(&path);
    let name = path.file_name()?.to_str()?;
    if ignore_file_names().iter().any(|n| n == name) {
        // The directory of an ignore file in the root is "".
        let dir = relative
            .as_deref()
            .map(|r| r.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned())?;
        return Some(Change::IgnoreRules { dir });
    }
    let path = relative?;
    Some(match event.typ {
        FileChangeType::DELETED => Change::Delete { path },
        _ => Change::Write { path },
    })
}

/// `workspace/didChangeWatchedFiles` (applied by the front door): the events' changes, in the client's order.
pub fn changes(documents: &Documents, params: &DidChangeWatchedFilesParams) -> Vec<Change> {
    params
        .changes
        .iter()
        .filter_map(|event| change_for(documents, event))
        .collect()
}
