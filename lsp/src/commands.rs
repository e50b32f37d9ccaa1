//! `workspace/executeCommand`: the commands of `docs/PROTOCOL.md`. Arguments are parsed into wire structs
//! here; each command is one tasks call (on the blocking pool) plus its conversion.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::{ExecuteCommandParams, Position, Range, Uri};

use super::apply::{apply_files, Applied};
use super::documents::{file_path, Document};
use super::front_door::{Arrival, Stamped};
use super::guard::blocking;
use super::hover::{explain_at, Where};
use super::position::{byte_range, offset};
use super::state::{State, NOT_READY};
use qwen_tasks::measure::PartialUnit;
use qwen_tasks::{EditAnswer, Layout, PatchRequest, RefactorRequest, TaskError};

/// Edits a range with an instruction.
pub const REFACTOR: &str = "qwen-ls.refactor";
/// A multi-file edit from an instruction.
pub const APPLY_INSTRUCTION: &str = "qwen-ls.applyInstruction";
/// Explains the function at a position.
pub const EXPLAIN: &str = "qwen-ls.explain";
/// Records that a suggestion was accepted.
pub const COMPLETION_ACCEPTED: &str = "qwen-ls.completionAccepted";
/// Records that the next word or line of a suggestion was accepted.
pub const COMPLETION_PARTIALLY_ACCEPTED: &str = "qwen-ls.completionPartiallyAccepted";
/// The server's state.
pub const STATUS: &str = "qwen-ls.status";
/// The exact completion prompt at a position.
pub const DUMP_PROMPT: &str = "qwen-ls.debug.dumpPrompt";

/// Compares the live index with a fresh re-index (tests of file watching in the clients use it).
pub const VERIFY_INDEX: &str = "qwen-ls.debug.verifyIndex";

/// Every command, as announced in `executeCommandProvider`.
pub const ALL: [&str; 8] = [
    REFACTOR,
    APPLY_INSTRUCTION,
    EXPLAIN,
    COMPLETION_ACCEPTED,
    COMPLETION_PARTIALLY_ACCEPTED,
    STATUS,
    DUMP_PROMPT,
    VERIFY_INDEX,
];

#[derive(Deserialize)]
struct RefactorArgs {
    uri: Uri,
    range: Range,
    #[serde(default)]
    instruction: Option<String>,
}

#[derive(Deserialize)]
struct ApplyArgs {
    #[serde(default)]
    instruction: Option<String>,
    #[serde(default)]
    uris: Option<Vec<Uri>>,
}

#[derive(Deserialize)]
struct PositionArgs {
    uri: Uri,
    position: Position,
}

#[derive(Deserialize)]
struct AcceptedArgs {
    id: String,
}

#[derive(Deserialize)]
struct PartiallyAcceptedArgs {
    id: String,
    unit: String,
    #[serde(default)]
    chars: usize,
}

fn first_arg<T: for<'de> Deserialize<'de>>(command: &str, arguments: &[Value]) -> Result<T> {
    let first = arguments.first().cloned().unwrap_or(Value::Null);
    serde_json::from_value(first)
        .map_err(|e| Error::invalid_params(format!("{command}: bad arguments: {e}")))
}

/// `workspace/executeCommand`.
pub async fn execute(
    state: Arc<State>,
    stamped: Stamped<ExecuteCommandParams>,
) -> Result<Option<Value>> {
    let (params, arrival) = (stamped.params, stamped.arrival);
    let (command, arguments) = (params.command.as_str(), &params.arguments[..]);
    // Each command's first argument, in the type its function takes.
    macro_rules! arg {
        () => {{
            first_arg(command, arguments)?
        }};
    }
    match command {
        STATUS => Ok(Some(state.status().command_result())),
        COMPLETION_ACCEPTED => accepted(&state, arg!()),
        COMPLETION_PARTIALLY_ACCEPTED => partially_accepted(&state, command, arg!()),
        EXPLAIN => explain(&state, arg!(), arrival).await,
        DUMP_PROMPT => dump_prompt(&state, &arg!()).await.map(Some),
        VERIFY_INDEX => verify_index(&state).await.map(Some),
        REFACTOR => Ok(Some(refactor_command(&state, arg!(), arrival).await.json())),
        APPLY_INSTRUCTION => Ok(Some(apply_instruction(&state, arg!()).await.json())),
        other => Err(unknown_command(other)),
    }
}

fn unknown_command(name: &str) -> Error {
    let known = ALL.join(", ");
    Error::invalid_params(format!("unknown command {name:?}; qwen-ls knows {known}"))
}

fn accepted(state: &State, args: AcceptedArgs) -> Result<Option<Value>> {
    state.log.accepted(&args.id);
    Ok(None)
}

fn partially_accepted(
    state: &State,
    command: &str,
    args: PartiallyAcceptedArgs,
) -> Result<Option<Value>> {
    let unit = PartialUnit::parse(&args.unit).ok_or_else(|| {
        let unit = &args.unit;
        Error::invalid_params(format!(
            "{command}: unit {unit:?}: expected \"word\" or \"line\""
        ))
    })?;
    state.log.partially_accepted(&args.id, unit, args.chars);
    Ok(None)
}

async fn explain(
    state: &Arc<State>,
    args: PositionArgs,
    arrival: Arrival,
) -> Result<Option<Value>> {
    let markdown = explain_at(state, &args.uri, args.position, arrival, Where::Anywhere).await;
    Ok(Some(
        markdown.map_or(Value::Null, |m| json!({ "markdown": m })),
    ))
}

/// LSP's `RequestFailed` (-32803): the request was valid but could not be served.
fn request_failed(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::ServerError(-32803),
        message: message.into().into(),
        data: None,
    }
}

fn open_document(state: &State, uri: &Uri) -> Option<Document> {
    state.documents.lock().get(uri)
}

async fn dump_prompt(state: &Arc<State>, args: &PositionArgs) -> Result<Value> {
    let Some((doc, encoding)) = state.documents.lock().with_encoding(&args.uri) else {
        let uri = args.uri.as_str();
        return Err(Error::invalid_params(format!("{uri} is not open")));
    };
    let request = doc.position(offset(&doc.text, args.position, encoding));
    let prompt = state
        .run(move |analysis, _| analysis.completion_prompt(&request, Layout::Full))
        .await
        .ok_or_else(|| request_failed(NOT_READY))?
        .map_err(|e| request_failed(e.to_string()))?;
    Ok(json!({ "prompt": prompt.prompt.to_text() }))
}

/// Why an instruction command does nothing, before any model work.
fn precheck(state: &State, instruction: Option<&str>) -> std::result::Result<String, Applied> {
    if !state.settings().code_actions.enabled {
        return Err(Applied::not(
            "refactoring is disabled (codeActions.enabled = false)",
        ));
    }
    match instruction.map(str::trim) {
        Some(i) if !i.is_empty() => Ok(i.to_owned()),
        _ => Err(Applied::not("no instruction was given")),
    }
}

/// The message for an answer that did not become a patch.
fn not_an_edit(answer: &EditAnswer) -> Option<Applied> {
    let failure = answer.result.as_ref().err()?;
    tracing::warn!(
        "the model's answer was not a valid edit ({failure}); answer:\n{}",
        answer.answer
    );
    Some(Applied::not(format!(
        "the model's answer could not be turned into an edit: {failure}"
    )))
}

async fn refactor_command(state: &Arc<State>, args: RefactorArgs, arrival: Arrival) -> Applied {
    let request = match precheck(state, args.instruction.as_deref())
        .and_then(|instruction| refactor_request(state, &args, arrival, instruction))
    {
        Ok(request) => request,
        Err(applied) => return applied,
    };
    let answer = state.run(move |analysis, cancel| analysis.refactor(&request, cancel));
    finish(state, "qwen-ls: refactor", answer.await).await
}

/// The refactor the command asks for, in bytes of the document as the editor has it, or as the disk has a
/// file that is not open (read through the workspace: the gate refuses a secret before a byte is read).
fn refactor_request(
    state: &State,
    args: &RefactorArgs,
    arrival: Arrival,
    instruction: String,
) -> std::result::Result<RefactorRequest, Applied> {
    let Some((_, workspace)) = state.ready() else {
        return Err(Applied::not(NOT_READY));
    };
    let encoding = state.documents.lock().encoding;
    let (path, text, range) = match open_document(state, &args.uri) {
        Some(doc) if arrival.version.is_some_and(|v| v != doc.version) => {
            return Err(Applied::not(
                "the document changed before the refactor started; not applied",
            ));
        }
        Some(doc) => {
            let range = byte_range(&doc.text, args.range, encoding);
            (doc.path(), Arc::from(doc.text.to_string()), range)
        }
        None => {
            let Some(path) = file_path(&args.uri) else {
                let uri = args.uri.as_str();
                return Err(Applied::not(format!("{uri} is not open and not a file")));
            };
            let (_, text) = (workspace.task_document(&path, None))
                .map_err(|e| Applied::not(format!("qwen-ls: {e}")))?;
            let range = byte_range(&ropey::Rope::from_str(&text), args.range, encoding);
            (path, text, range)
        }
    };
    let text = Some(text);
    Ok(RefactorRequest {
        path,
        text,
        range,
        instruction,
    })
}

async fn apply_instruction(state: &Arc<State>, args: ApplyArgs) -> Applied {
    let instruction = match precheck(state, args.instruction.as_deref()) {
        Ok(i) => i,
        Err(applied) => return applied,
    };
    let files = args
        .uris
        .unwrap_or_default()
        .iter()
        .filter_map(file_path)
        .collect();
    let request = PatchRequest {
        instruction,
        files,
        budget: None,
    };
    let answer = state.run(move |analysis, cancel| analysis.patch(&request, cancel));
    finish(state, "qwen-ls: apply instruction", answer.await).await
}

async fn finish(
    state: &Arc<State>,
    label: &str,
    answer: Option<std::result::Result<EditAnswer, TaskError>>,
) -> Applied {
    let Some(answer) = answer else {
        return Applied::not(NOT_READY);
    };
    match answer {
        Err(TaskError::Cancelled) => Applied::not("cancelled"),
        Err(e) => Applied::not(e.to_string()),
        Ok(answer) => match not_an_edit(&answer) {
            Some(applied) => applied,
            None => match &answer.result {
                Ok(proposal) => apply_files(state, label, proposal.files()).await,
                Err(_) => Applied::not("no edit"),
            },
        },
    }
}

/// `qwen-ls.debug.verifyIndex`: `{ equal, files, freshFiles, difference }` once the index is loaded.
async fn verify_index(state: &State) -> Result<Value> {
    let Some(workspace) = state.workspace() else {
        return Err(Error {
            code: ErrorCode::InvalidRequest,
            message: "qwen-ls.debug.verifyIndex: the workspace is not indexed yet".into(),
            data: None,
        });
    };
    let check = blocking(move || workspace.verify_index())
        .await
        .map_err(|e| Error {
            code: ErrorCode::InternalError,
            message: format!("verifyIndex: {e}").into(),
            data: None,
        })?;
    Ok(json!({
        "equal": check.first_difference.is_none(),
        "files": check.files,
        "freshFiles": check.fresh_files,
        "difference": check.first_difference,
    }))
}
