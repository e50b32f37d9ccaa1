/**
 * Settings → server configuration.
 *
 * Every server key of docs/PROTOCOL.md is contributed as `qwen-ls.<key>` in package.json. The server gets the
 * keys the user actually set (user, workspace or folder scope), nested by their dots, as `initializationOptions`
 * and again, whole, in `workspace/didChangeConfiguration`. Defaults are not sent: they belong to the server, so
 * a server that changes a default is not overridden by a stale copy in this extension, and removing a setting
 * returns the server to its default (PROTOCOL.md: the object is not a patch).
 *
 * This module has no `vscode` import so that it can be unit-tested under plain Node.
 */

/** Keys of PROTOCOL.md's configuration table, without the `qwen-ls.` prefix. */
export const SERVER_KEYS = [
  "model",
  "dtype",
  "backend",
  "openai.endpoint",
  "openai.model",
  "openai.apiKeyEnv",
  "threads.prefill",
  "threads.decode",
  "draftModel",
  "completion.enabled",
  "completion.model",
  "completion.speculative",
  "completion.budget",
  "completion.maxTokens",
  "completion.temperature",
  "completion.debounceMs",
  "completion.latencyMs",
  "completion.suffixTokens",
  "hover.enabled",
  "hover.budget",
  "hover.maxTokens",
  "hover.speculative",
  "codeActions.enabled",
  "codeActions.budget",
  "codeActions.maxTokens",
  "codeActions.speculative",
  "codeActions.checkCommand",
  "codeActions.maxRounds",
  "codeActions.checkTimeout",
  "codeActions.fixTimeLimit",
  "codeActions.preview",
  "debug.dumpPrompt",
  "logFile",
] as const;

/**
 * Settings that choose where code is sent (`backend`, `openai.*`), which programs run (`path`,
 * `codeActions.checkCommand`) or where files are written (`logFile`). They are `machine`-scoped in package.json,
 * so VS Code takes them from user (or remote) settings only; this extension also reads them from user settings
 * only, so a repository's `.vscode/settings.json` can never redirect them, whatever VS Code version reads it.
 */
export const USER_ONLY_KEYS = [
  "backend",
  "openai.endpoint",
  "openai.model",
  "openai.apiKeyEnv",
  "logFile",
  "path",
  "codeActions.checkCommand",
] as const;

/** Settings that only the extension reads; never sent to the server. */
export const CLIENT_ONLY_KEYS = ["path", "trace.server"] as const;

/** The configuration section that holds every key. */
export const SECTION = "qwen-ls";

/** What `vscode.WorkspaceConfiguration.inspect` returns, reduced to the scopes a user can set. */
export interface InspectedSetting {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** The part of `vscode.WorkspaceConfiguration` (for section `qwen-ls`) this module needs. */
export interface SettingsSource {
  inspect(key: string): InspectedSetting | undefined;
}

/** A JSON object as sent to the server. */
export type JsonObject = { [key: string]: unknown };

/** The value the user set for `key`, the narrowest scope winning; `undefined` when only the default applies. */
export function explicitValue(setting: InspectedSetting | undefined): unknown {
  if (setting === undefined) {
    return undefined;
  }
  return setting.workspaceFolderValue ?? setting.workspaceValue ?? setting.globalValue;
}

/** The value of `key` as the server (or the extension) may use it: user settings only for [`USER_ONLY_KEYS`]. */
export function settingValue(key: string, setting: InspectedSetting | undefined): unknown {
  if ((USER_ONLY_KEYS as readonly string[]).includes(key)) {
    return setting?.globalValue;
  }
  return explicitValue(setting);
}

/** Sets `path` ("a.b.c") inside `target`, creating the intermediate objects. */
export function setPath(target: JsonObject, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) {
      node = next as JsonObject;
    } else {
      const created: JsonObject = {};
      node[part] = created;
      node = created;
    }
  }
  node[parts[parts.length - 1]] = value;
}

/** The server configuration object: every explicitly set server key, nested by its dots. */
export function buildServerSettings(source: SettingsSource): JsonObject {
  const settings: JsonObject = {};
  for (const key of SERVER_KEYS) {
    const value = settingValue(key, source.inspect(key));
    if (value !== undefined) {
      setPath(settings, key, value);
    }
  }
  return settings;
}

/** The `workspace/didChangeConfiguration` params PROTOCOL.md asks for. */
export function didChangeConfigurationParams(settings: JsonObject): { settings: JsonObject } {
  return { settings: { [SECTION]: settings } };
}

/** Whether a configuration change (tested with `affectsConfiguration`) concerns the server. */
export function affectsServer(affects: (section: string) => boolean): boolean {
  return SERVER_KEYS.some((key) => affects(`${SECTION}.${key}`));
}

/** Whether a change needs a new server process rather than a configuration notification. */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return affects(`${SECTION}.path`);
}
