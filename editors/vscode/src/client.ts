/**
 * Owns the language client: finds the binary, starts `qwen-ls serve`, restarts it with back-off when it dies,
 * keeps the StatusModel fed, and pushes settings. Everything the user sees comes from the server; this class
 * only wires it through.
 */
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  MessageType,
  ServerOptions,
  ShowMessageNotification,
  State,
  TransportKind,
} from "vscode-languageclient/node";

import { RestartBackoff } from "./backoff";
import { LANGUAGES, selectorFor, ServedLanguages } from "./languages";
import { describeApplyResult, executeWithInstruction, parseApplyResult, ServerCommands, validateInstruction } from "./commandArgs";
import { defaultResolveEnv, resolveServerPath } from "./serverPath";
import { buildServerSettings, didChangeConfigurationParams, SECTION, settingValue } from "./settings";
import { StatusModel } from "./status";

export class QwenClient implements vscode.Disposable {
  readonly status = new StatusModel();
  private client: LanguageClient | undefined;
  private readonly backoff = new RestartBackoff();
  private readonly statusChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeStatus = this.statusChanged.event;
  /** Bumped by every manual start/stop so that a back-off wait from an older client gives up. */
  private generation = 0;

  constructor(private readonly output: vscode.LogOutputChannel) {}

  /** The running client, if any (commands use it to send requests). */
  get languageClient(): LanguageClient | undefined {
    return this.client?.isRunning() === true ? this.client : undefined;
  }

  async start(): Promise<void> {
    const generation = ++this.generation;
    const config = vscode.workspace.getConfiguration(SECTION);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    // User settings only: a repository's `.vscode/settings.json` must never choose the program that runs.
    const pathSetting = settingValue("path", config.inspect("path"));
    const resolved = resolveServerPath(
      typeof pathSetting === "string" ? pathSetting : undefined,
      defaultResolveEnv(folder),
    );
    if (!resolved.ok) {
      this.status.serverStopped(resolved.message);
      this.statusChanged.fire();
      void vscode.window.showErrorMessage(resolved.message, "Open Settings").then((choice) => {
        if (choice === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", `${SECTION}.path`);
        }
      });
      return;
    }
    this.output.info(`starting ${resolved.path} serve`);

    const serverOptions: ServerOptions = {
      command: resolved.path,
      args: ["serve"],
      transport: TransportKind.stdio,
      options: folder !== undefined ? { cwd: folder } : {},
    };
    const clientOptions: LanguageClientOptions = {
      // Narrowed to the languages the server announces (ServedLanguages) before any document is sent.
      documentSelector: selectorFor(LANGUAGES),
      initializationOptions: () => buildServerSettings(vscode.workspace.getConfiguration(SECTION)),
      outputChannel: this.output,
      // Lasting problems arrive as one showMessage (handled below); don't also pop the output channel.
      revealOutputChannelOn: 4 /* RevealOutputChannelOn.Never */,
      errorHandler: {
        error: (_error, _message, count) => ({ action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown }),
        closed: () => this.onClosed(generation),
      },
      middleware: {
        handleWorkDoneProgress: (token, params, next) => {
          this.status.progress(token, params);
          this.statusChanged.fire();
          next(token, params);
        },
        // Code actions "Refactor with instruction…" / "Apply instruction across workspace…" carry the server
        // command without an instruction: ask for it here (PROTOCOL.md).
        executeCommand: (command, args: unknown[], next) =>
          executeWithInstruction(command, args, promptInstruction, async (c, a) => (await next(c, a)) as unknown, showApplyResult),
      },
    };

    const client = new LanguageClient(SECTION, "qwen-ls", serverOptions, clientOptions);
    client.registerFeature(new ServedLanguages());
    this.client = client;
    client.onNotification("qwen-ls/status", (params: unknown) => {
      this.status.status(params);
      this.statusChanged.fire();
    });
    // Replaces the client's default popup so that the status bar learns about errors too.
    client.onNotification(ShowMessageNotification.type, (params) => {
      this.status.showMessage(params.type, params.message);
      this.statusChanged.fire();
      showServerMessage(params.type, params.message);
    });
    client.onDidChangeState((event) => {
      if (event.newState === State.Running) {
        void this.refreshStatus(client);
      }
    });

    this.status.serverStarting();
    this.statusChanged.fire();
    this.backoff.started(Date.now());
    try {
      await client.start();
    } catch (error) {
      const message = `qwen-ls failed to start: ${error instanceof Error ? error.message : String(error)}`;
      this.output.error(message);
      this.status.serverStopped(message);
      this.statusChanged.fire();
    }
  }

  async stop(): Promise<void> {
    this.generation++;
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      try {
        await client.stop(5_000);
      } catch (error) {
        this.output.warn(`stopping qwen-ls: ${String(error)}`);
      }
      await client.dispose();
    }
    this.status.serverStopped("Stopped.");
    this.statusChanged.fire();
  }

  /** A user-requested restart: forget earlier crashes. */
  async restart(): Promise<void> {
    this.backoff.reset();
    await this.stop();
    await this.start();
  }

  /** Sends the whole settings object again (PROTOCOL.md: not a patch). */
  async sendSettings(): Promise<void> {
    const client = this.languageClient;
    if (client === undefined) {
      return;
    }
    const settings = buildServerSettings(vscode.workspace.getConfiguration(SECTION));
    await client.sendNotification(DidChangeConfigurationNotification.type, didChangeConfigurationParams(settings));
  }

  /** `workspace/executeCommand` straight to the server (not through VS Code's command registry). */
  async executeCommand(command: string, args: unknown[], token?: vscode.CancellationToken): Promise<unknown> {
    const client = this.languageClient;
    if (client === undefined) {
      throw new Error("The qwen-ls server is not running. Run \"qwen-ls: Restart server\" or see \"qwen-ls: Show server output\".");
    }
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }, token);
  }

  dispose(): void {
    void this.stop();
    this.statusChanged.dispose();
  }

  private async refreshStatus(client: LanguageClient): Promise<void> {
    try {
      const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.status, arguments: [] });
      this.status.status(result);
      this.statusChanged.fire();
    } catch (error) {
      this.output.warn(`qwen-ls.status failed: ${String(error)}`);
    }
  }

  private async onClosed(generation: number): Promise<{ action: CloseAction; message?: string; handled?: boolean }> {
    const decision = this.backoff.crashed(Date.now());
    if (!decision.restart) {
      const message = `qwen-ls exited ${decision.attempts} times in a row; not restarting. Check "qwen-ls: Show server output", then run "qwen-ls: Restart server".`;
      this.status.serverStopped(message);
      this.statusChanged.fire();
      void vscode.window.showErrorMessage(message);
      return { action: CloseAction.DoNotRestart, message, handled: true };
    }
    const seconds = Math.round(decision.delayMs / 1000);
    this.status.serverStopped(`qwen-ls exited; restarting in ${seconds} s (attempt ${decision.attempt}).`);
    this.statusChanged.fire();
    await new Promise((resolve) => setTimeout(resolve, decision.delayMs));
    if (generation !== this.generation) {
      // Stopped or restarted by hand meanwhile: that path owns the server now.
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.status.serverStarting();
    this.statusChanged.fire();
    this.backoff.started(Date.now());
    return { action: CloseAction.Restart, handled: true };
  }
}

/** The input box for an instruction; `undefined` when the user cancels. */
export async function promptInstruction(title: string): Promise<string | undefined> {
  const text = await vscode.window.showInputBox({
    title: `qwen-ls: ${title}`,
    prompt: "What should change?",
    placeHolder: "e.g. use early returns; rename x to count; add error handling",
    ignoreFocusOut: true,
    validateInput: validateInstruction,
  });
  return text === undefined || text.trim() === "" ? undefined : text;
}

/** Tells the user what a refactor did (the edit itself arrives through `workspace/applyEdit`). */
export function showApplyResult(result: unknown, what: string): void {
  const summary = describeApplyResult(parseApplyResult(result), what);
  if (summary.ok) {
    void vscode.window.showInformationMessage(summary.text);
  } else {
    void vscode.window.showWarningMessage(summary.text);
  }
}

function showServerMessage(type: MessageType, message: string): void {
  switch (type) {
    case MessageType.Error:
      void vscode.window.showErrorMessage(message);
      break;
    case MessageType.Warning:
      void vscode.window.showWarningMessage(message);
      break;
    default:
      void vscode.window.showInformationMessage(message);
  }
}
