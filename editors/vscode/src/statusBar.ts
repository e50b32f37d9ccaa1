/** Renders the StatusModel into one status-bar item; a click opens a small menu of what can be done about it. */
import * as vscode from "vscode";

import { ClientCommands } from "./commandArgs";
import { ServerState, StatusView } from "./status";

export const STATUS_MENU_COMMAND = "qwen-ls.statusMenu";

const ICONS: Record<ServerState, string> = {
  starting: "$(sync~spin)",
  "loading-model": "$(sync~spin)",
  indexing: "$(sync~spin)",
  ready: "$(check)",
  error: "$(error)",
  stopped: "$(circle-slash)",
};

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("qwen-ls.status", vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.name = "qwen-ls";
    this.item.command = STATUS_MENU_COMMAND;
    this.item.show();
  }

  render(view: StatusView): void {
    this.item.text = `${ICONS[view.state]} ${view.text}`;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.state === "error" || view.state === "stopped" ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** The menu behind the status-bar item. */
export async function showStatusMenu(view: StatusView): Promise<void> {
  const items: (vscode.QuickPickItem & { command: string; args?: unknown[] })[] = [
    { label: "$(debug-restart) Restart server", command: ClientCommands.restart },
    { label: "$(output) Show server output", command: ClientCommands.showOutput },
    { label: "$(gear) Open settings", command: "workbench.action.openSettings", args: ["qwen-ls"] },
  ];
  const picked = await vscode.window.showQuickPick(items, { title: `${view.text} — ${view.tooltip}` });
  if (picked !== undefined) {
    await vscode.commands.executeCommand(picked.command, ...(picked.args ?? []));
  }
}
