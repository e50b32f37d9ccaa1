/**
 * Shows an explanation in VS Code's own markdown preview: the markdown lives in a read-only virtual document
 * (scheme `qwen-ls-explain`), so there is no webview or HTML of ours to sanitize.
 */
import * as vscode from "vscode";

export const EXPLAIN_SCHEME = "qwen-ls-explain";

export class ExplainView implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly documents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly registration = vscode.workspace.registerTextDocumentContentProvider(EXPLAIN_SCHEME, this);
  private counter = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.documents.get(uri.toString()) ?? "";
  }

  /** Opens `markdown` in a preview beside the editor; falls back to the raw text if the preview is unavailable. */
  async show(title: string, markdown: string): Promise<void> {
    // A fresh path per explanation: the preview caches by URI, and older explanations stay readable.
    const safe = title.replace(/[^\w.-]+/g, "-").slice(0, 60) || "explanation";
    const uri = vscode.Uri.from({ scheme: EXPLAIN_SCHEME, path: `/${++this.counter}-${safe}.md` });
    this.documents.set(uri.toString(), markdown);
    this.changed.fire(uri);
    try {
      await vscode.commands.executeCommand("markdown.showPreviewToSide", uri);
    } catch {
      const document = await vscode.workspace.openTextDocument(uri);
      await vscode.languages.setTextDocumentLanguage(document, "markdown");
      await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true });
    }
  }

  dispose(): void {
    this.registration.dispose();
    this.changed.dispose();
  }
}
