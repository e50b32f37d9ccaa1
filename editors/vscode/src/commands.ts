/** The extension's commands: each collects its input from the editor, then makes one server request. */
import * as vscode from "vscode";

import { QwenClient, promptInstruction, showApplyResult } from "./client";
import { applyInstructionArgs, describeIndexCheck, explainArgs, parseExplainResult, refactorArgs, ServerCommands } from "./commandArgs";
import { ExplainView } from "./explainView";

/** Runs `task` under a cancellable notification; cancelling sends `$/cancelRequest`. */
async function withServerProgress<T>(title: string, task: (token: vscode.CancellationToken) => Promise<T>): Promise<T | undefined> {
  try {
    return await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (_progress, token) =>
      task(token),
    );
  } catch (error) {
    void vscode.window.showErrorMessage(`${title} failed: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

export async function refactorWithInstruction(qwen: QwenClient): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const client = qwen.languageClient;
  if (editor === undefined || client === undefined) {
    void vscode.window.showWarningMessage(editor === undefined ? "qwen-ls: open a file first." : "qwen-ls: the server is not running.");
    return;
  }
  const instruction = await promptInstruction("Refactor with instruction");
  if (instruction === undefined) {
    return;
  }
  // No selection: an empty range at the cursor, which the server widens to the enclosing function.
  const c2p = client.code2ProtocolConverter;
  const args = refactorArgs(c2p.asUri(editor.document.uri), c2p.asRange(editor.selection), instruction);
  const result = await withServerProgress("qwen-ls: refactoring…", (token) => qwen.executeCommand(ServerCommands.refactor, args, token));
  if (result !== undefined) {
    showApplyResult(result, "refactor");
  }
}

/** From the palette: the server picks the files. From the explorer: the clicked (or selected) files. */
export async function applyInstructionAcrossWorkspace(qwen: QwenClient, clicked?: vscode.Uri, selected?: vscode.Uri[]): Promise<void> {
  const client = qwen.languageClient;
  if (client === undefined) {
    void vscode.window.showWarningMessage("qwen-ls: the server is not running.");
    return;
  }
  const instruction = await promptInstruction("Apply instruction across workspace");
  if (instruction === undefined) {
    return;
  }
  const targets = selected !== undefined && selected.length > 0 ? selected : clicked !== undefined ? [clicked] : [];
  const args = applyInstructionArgs(
    instruction,
    targets.map((uri) => client.code2ProtocolConverter.asUri(uri)),
  );
  const result = await withServerProgress("qwen-ls: editing the workspace…", (token) =>
    qwen.executeCommand(ServerCommands.applyInstruction, args, token),
  );
  if (result !== undefined) {
    showApplyResult(result, "workspace edit");
  }
}

export async function explainFunction(qwen: QwenClient, view: ExplainView): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const client = qwen.languageClient;
  if (editor === undefined || client === undefined) {
    void vscode.window.showWarningMessage(editor === undefined ? "qwen-ls: open a file first." : "qwen-ls: the server is not running.");
    return;
  }
  const c2p = client.code2ProtocolConverter;
  const args = explainArgs(c2p.asUri(editor.document.uri), c2p.asPosition(editor.selection.active));
  const result = await withServerProgress("qwen-ls: explaining…", (token) => qwen.executeCommand(ServerCommands.explain, args, token));
  const markdown = parseExplainResult(result);
  if (markdown === undefined) {
    void vscode.window.showInformationMessage("qwen-ls: nothing to explain here — put the cursor inside a function or method.");
    return;
  }
  const name = editor.document.getWordRangeAtPosition(editor.selection.active);
  const word = name !== undefined ? editor.document.getText(name) : "function";
  await view.show(`Explain ${word}`, markdown);
}

/** Compares the server's index with a fresh re-index (files changed outside VS Code reach it by watching). */
export async function verifyIndex(qwen: QwenClient): Promise<void> {
  const result = await withServerProgress("qwen-ls: verifying the index…", (token) => qwen.executeCommand(ServerCommands.verifyIndex, [], token));
  if (result === undefined) {
    return;
  }
  const summary = describeIndexCheck(result);
  if (summary.ok) {
    void vscode.window.showInformationMessage(summary.text);
  } else {
    void vscode.window.showWarningMessage(summary.text);
  }
}
