/**
 * A minimal LSP client session over stdio for the integration test: the same protocol library the language
 * client is built on (vscode-languageserver-protocol), the extension's own settings mapping, command
 * arguments and status model, and in-memory documents that `workspace/applyEdit` really edits. What VS Code
 * itself would add (UI) is not needed to prove the wire contract with the real server.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";

import {
  ApplyWorkspaceEditParams,
  ApplyWorkspaceEditRequest,
  createProtocolConnection,
  ExecuteCommandRequest,
  InitializeResult,
  ProtocolConnection,
  ShowMessageNotification,
  StreamMessageReader,
  StreamMessageWriter,
  TextDocumentEdit,
  TextEdit,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
} from "vscode-languageserver-protocol/node";
import { TextDocument } from "vscode-languageserver-textdocument";

import { ServerCommands } from "../../src/commandArgs";
import { ProgressValue, StatusModel } from "../../src/status";

export class LspSession {
  readonly status = new StatusModel();
  readonly documents = new Map<string, TextDocument>();
  readonly applyEdits: ApplyWorkspaceEditParams[] = [];
  readonly messages: { type: number; message: string }[] = [];
  private readonly stderr: string[] = [];
  private constructor(
    readonly process: ChildProcess,
    readonly connection: ProtocolConnection,
  ) {}

  static start(bin: string, cwd: string): LspSession {
    const child = spawn(bin, ["serve"], { cwd, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, QWEN_LS_LOG: "info" } });
    const connection = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    const session = new LspSession(child, connection);
    child.stderr.on("data", (chunk: Buffer) => {
      session.stderr.push(chunk.toString());
      if (session.stderr.length > 200) {
        session.stderr.splice(0, 100);
      }
    });
    connection.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      connection.onProgress(WorkDoneProgress.type, token, (value) => session.status.progress(token, value as ProgressValue));
    });
    connection.onNotification("qwen-ls/status", (params: unknown) => session.status.status(params));
    connection.onNotification(ShowMessageNotification.type, (params) => {
      session.messages.push(params);
      session.status.showMessage(params.type, params.message);
    });
    connection.onRequest(ApplyWorkspaceEditRequest.type, (params) => session.applyWorkspaceEdit(params));
    // Other client requests a server may make: answer as an editor without those settings or dialogs would.
    connection.onRequest("workspace/configuration", (params: { items?: unknown[] }) => (params.items ?? []).map(() => null));
    connection.onRequest("client/registerCapability", () => null);
    connection.onRequest("client/unregisterCapability", () => null);
    connection.onRequest("window/showMessageRequest", () => null);
    connection.onRequest("window/showDocument", () => ({ success: false }));
    connection.listen();
    session.status.serverStarting();
    return session;
  }

  /** Server stderr so far (for failure messages). */
  log(): string {
    return this.stderr.join("").split("\n").slice(-40).join("\n");
  }

  async initialize(rootUri: string, initializationOptions: unknown): Promise<InitializeResult> {
    const result = await this.connection.sendRequest("initialize", {
      processId: process.pid,
      rootUri,
      workspaceFolders: [{ uri: rootUri, name: "workspace" }],
      initializationOptions,
      // What VS Code 1.91 + vscode-languageclient 10 announce for the features this extension uses.
      capabilities: {
        general: { positionEncodings: ["utf-16"] },
        window: { workDoneProgress: true, showMessage: {} },
        workspace: {
          applyEdit: true,
          workspaceEdit: { documentChanges: true },
          configuration: true,
          didChangeConfiguration: { dynamicRegistration: true },
          executeCommand: { dynamicRegistration: true },
          workspaceFolders: true,
        },
        textDocument: {
          synchronization: { dynamicRegistration: true, didSave: true },
          inlineCompletion: { dynamicRegistration: true },
          completion: { completionItem: { snippetSupport: true } },
          hover: { contentFormat: ["markdown", "plaintext"] },
          codeAction: { resolveSupport: { properties: ["edit"] }, dataSupport: true },
        },
      },
    });
    await this.connection.sendNotification("initialized", {});
    return result as InitializeResult;
  }

  open(uri: string, languageId: string, path: string): TextDocument {
    const doc = TextDocument.create(uri, languageId, 1, fs.readFileSync(path, "utf8"));
    this.documents.set(uri, doc);
    void this.connection.sendNotification("textDocument/didOpen", {
      textDocument: { uri, languageId, version: doc.version, text: doc.getText() },
    });
    return doc;
  }

  /** Inserts `text` at `offset` as VS Code would send it (incremental change, version + 1). */
  async type(uri: string, offset: number, text: string): Promise<TextDocument> {
    const doc = this.documents.get(uri)!;
    const position = doc.positionAt(offset);
    const updated = TextDocument.update(doc, [{ range: { start: position, end: position }, text }], doc.version + 1);
    this.documents.set(uri, updated);
    await this.connection.sendNotification("textDocument/didChange", {
      textDocument: { uri, version: updated.version },
      contentChanges: [{ range: { start: position, end: position }, text }],
    });
    return updated;
  }

  executeCommand(command: string, args: unknown[]): Promise<unknown> {
    return this.connection.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  }

  /** Polls `qwen-ls.status` until `ready`; throws on `error` or timeout. */
  async waitReady(timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = (await this.executeCommand(ServerCommands.status, [])) as Record<string, unknown> | null;
      this.status.status(result);
      if (result?.state === "ready") {
        return result;
      }
      if (result?.state === "error") {
        throw new Error(`server reported error: ${String(result.message)}\n${this.log()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`server not ready after ${timeoutMs} ms (last: ${JSON.stringify(result)})\n${this.log()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  private applyWorkspaceEdit(params: ApplyWorkspaceEditParams): { applied: boolean; failureReason?: string } {
    this.applyEdits.push(params);
    const perUri: [string, TextEdit[], number | null][] = [];
    for (const change of params.edit.documentChanges ?? []) {
      if (TextDocumentEdit.is(change)) {
        perUri.push([change.textDocument.uri, change.edits as TextEdit[], change.textDocument.version]);
      }
    }
    for (const [uri, edits] of Object.entries(params.edit.changes ?? {})) {
      perUri.push([uri, edits, null]);
    }
    for (const [uri, , version] of perUri) {
      const doc = this.documents.get(uri);
      if (doc === undefined) {
        return { applied: false, failureReason: `document not open: ${uri}` };
      }
      if (version !== null && version !== doc.version) {
        return { applied: false, failureReason: `version ${version} != ${doc.version}` };
      }
    }
    for (const [uri, edits] of perUri) {
      const doc = this.documents.get(uri)!;
      const text = TextDocument.applyEdits(doc, edits);
      const updated = TextDocument.create(uri, doc.languageId, doc.version + 1, text);
      this.documents.set(uri, updated);
      void this.connection.sendNotification("textDocument/didChange", {
        textDocument: { uri, version: updated.version },
        contentChanges: [{ text }],
      });
    }
    return { applied: true };
  }

  async shutdown(timeoutMs = 10_000): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => this.process.once("exit", (code) => resolve(code)));
    try {
      await this.connection.sendRequest("shutdown");
      await this.connection.sendNotification("exit");
    } catch {
      // The process may already be gone; the exit code below tells.
    }
    const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), timeoutMs));
    const code = await Promise.race([exited, timer]);
    this.connection.dispose();
    if (code === "timeout") {
      this.process.kill("SIGKILL");
      throw new Error("server did not exit after shutdown/exit");
    }
    return code;
  }
}
