/**
 * The languages the client registers for are the server's: `initialize` announces them
 * (`capabilities.experimental.qwenLs.languageIds`, PROTOCOL.md), generated from the server's grammar table.
 * The client starts with the same list, as written in package.json's activation events (the manifest test
 * keeps the two equal and the integration test compares them with the server's answer), and narrows its
 * document selector to exactly what the server announced before any document is synchronised.
 */
import type { DocumentSelector, FeatureState, ServerCapabilities, StaticFeature } from "vscode-languageclient";

/** The languages of the server's grammar table (what a server of this version announces). */
export const LANGUAGES = ["rust", "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "java"];

/** The selector for `languages`: files on disk and untitled buffers. */
export function selectorFor(languages: readonly string[]): { scheme: string; language: string }[] {
  return languages.flatMap((language) => [
    { scheme: "file", language },
    { scheme: "untitled", language },
  ]);
}

/** The language ids in an initialize result's capabilities; `undefined` when the server announces none. */
export function announcedLanguages(capabilities: unknown): string[] | undefined {
  const ids = (capabilities as { experimental?: { qwenLs?: { languageIds?: unknown } } } | undefined)?.experimental?.qwenLs?.languageIds;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === "string")) {
    return undefined;
  }
  return ids;
}

/**
 * Narrows the client's document selector to the announced languages. vscode-languageclient hands every
 * feature the same selector array after `initialize`; this feature rewrites it in place in `preInitialize`,
 * which runs for every feature before any of them registers for documents.
 */
export class ServedLanguages implements StaticFeature {
  /** What the server announced (`undefined` until initialize, or when it announced nothing). */
  served: string[] | undefined;

  /** Nothing to announce: the list comes from the server. */
  fillClientCapabilities(): void {}

  preInitialize(capabilities: ServerCapabilities, selector: DocumentSelector | undefined): void {
    this.served = announcedLanguages(capabilities);
    if (this.served !== undefined && Array.isArray(selector)) {
      (selector as unknown[]).splice(0, selector.length, ...selectorFor(this.served));
    }
  }

  initialize(): void {}

  getState(): FeatureState {
    return { kind: "static" };
  }

  clear(): void {
    this.served = undefined;
  }
}
