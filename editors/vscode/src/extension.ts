/** Entry point: wires settings, the client, the status bar and the commands together. */
import * as vscode from "vscode";

import { QwenClient } from "./client";
import { ClientCommands } from "./commandArgs";
import { applyInstructionAcrossWorkspace, explainFunction, refactorWithInstruction, verifyIndex } from "./commands";
import { ExplainView } from "./explainView";
import { affectsServer, needsRestart } from "./settings";
import { showStatusMenu, STATUS_MENU_COMMAND, StatusBar } from "./statusBar";

let qwen: QwenClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("qwen-ls", { log: true });
  const client = new QwenClient(output);
  qwen = client;
  const statusBar = new StatusBar();
  const explainView = new ExplainView();
  // "starting" from the first frame: the model's initial "stopped" would flash red on every launch.
  client.status.serverStarting();
  statusBar.render(client.status.view());

  context.subscriptions.push(
    output,
    statusBar,
    explainView,
    client,
    client.onDidChangeStatus(() => statusBar.render(client.status.view())),
    vscode.commands.registerCommand(ClientCommands.refactor, () => refactorWithInstruction(client)),
    vscode.commands.registerCommand(ClientCommands.applyInstruction, (clicked?: vscode.Uri, selected?: vscode.Uri[]) =>
      applyInstructionAcrossWorkspace(client, clicked, selected),
    ),
    vscode.commands.registerCommand(ClientCommands.explain, () => explainFunction(client, explainView)),
    vscode.commands.registerCommand(ClientCommands.restart, () => client.restart()),
    vscode.commands.registerCommand(ClientCommands.showOutput, () => output.show(true)),
    vscode.commands.registerCommand(ClientCommands.verifyIndex, () => verifyIndex(client)),
    vscode.commands.registerCommand(STATUS_MENU_COMMAND, () => showStatusMenu(client.status.view())),
    vscode.workspace.onDidChangeConfiguration((event) => {
      const affects = (section: string): boolean => event.affectsConfiguration(section);
      if (needsRestart(affects)) {
        void client.restart();
      } else if (affectsServer(affects)) {
        void client.sendSettings();
      }
    }),
  );

  await vscode.commands.executeCommand("setContext", "qwen-ls.active", true);
  await client.start();
}

export async function deactivate(): Promise<void> {
  await qwen?.stop();
  qwen = undefined;
}
