/** Settings → initializationOptions / didChangeConfiguration mapping. */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  affectsServer,
  buildServerSettings,
  didChangeConfigurationParams,
  explicitValue,
  InspectedSetting,
  needsRestart,
  setPath,
  SettingsSource,
  settingValue,
  USER_ONLY_KEYS,
} from "../../src/settings";

function source(values: Record<string, InspectedSetting>): SettingsSource {
  return { inspect: (key) => values[key] };
}

test("only explicitly set keys are sent, nested by their dots", () => {
  const settings = buildServerSettings(
    source({
      model: { globalValue: "/models/qwen" },
      "completion.maxTokens": { workspaceValue: 32 },
      "completion.enabled": { globalValue: false },
      "openai.apiKeyEnv": { globalValue: "QWEN_LS_API_KEY" },
      "hover.budget": {}, // only a default: not sent
    }),
  );
  assert.deepEqual(settings, {
    model: "/models/qwen",
    completion: { maxTokens: 32, enabled: false },
    openai: { apiKeyEnv: "QWEN_LS_API_KEY" },
  });
});

test("speculative decoding and the extra models are sent like the other keys", () => {
  const settings = buildServerSettings(
    source({
      draftModel: { globalValue: "/models/small.gguf" },
      "completion.model": { workspaceValue: "qwen2.5-coder-0.5b" },
      "completion.speculative": { globalValue: "lookup", workspaceValue: "draft" },
      "hover.speculative": { globalValue: "off" },
      "codeActions.speculative": { workspaceFolderValue: "draft" },
      "completion.latencyMs": { globalValue: 0 },
    }),
  );
  assert.deepEqual(settings, {
    draftModel: "/models/small.gguf",
    completion: { model: "qwen2.5-coder-0.5b", speculative: "draft", latencyMs: 0 },
    hover: { speculative: "off" },
    codeActions: { speculative: "draft" },
  });
});

test("nothing set gives an empty object, not defaults", () => {
  assert.deepEqual(buildServerSettings(source({})), {});
});

test("client-only keys never reach the server", () => {
  const settings = buildServerSettings(source({ path: { globalValue: "/bin/qwen-ls" }, "trace.server": { globalValue: "verbose" } }));
  assert.deepEqual(settings, {});
});

test("the narrowest scope wins", () => {
  assert.equal(explicitValue({ globalValue: 1, workspaceValue: 2, workspaceFolderValue: 3 }), 3);
  assert.equal(explicitValue({ globalValue: 1, workspaceValue: 2 }), 2);
  assert.equal(explicitValue({ globalValue: 1 }), 1);
  assert.equal(explicitValue(undefined), undefined);
  // false and 0 are values, not "unset".
  assert.equal(explicitValue({ globalValue: true, workspaceValue: false }), false);
  assert.equal(explicitValue({ globalValue: 5, workspaceValue: 0 }), 0);
});

test("setPath replaces a scalar in the way by an object", () => {
  const target: Record<string, unknown> = { threads: 4 };
  setPath(target, "threads.decode", 2);
  assert.deepEqual(target, { threads: { decode: 2 } });
});

test("didChangeConfiguration wraps the object under the section", () => {
  assert.deepEqual(didChangeConfigurationParams({ model: "m" }), { settings: { "qwen-ls": { model: "m" } } });
});

test("which changes concern the server and which need a restart", () => {
  const changed = (keys: string[]) => (section: string) => keys.some((k) => k === section || k.startsWith(`${section}.`));
  assert.equal(affectsServer(changed(["qwen-ls.completion.maxTokens"])), true);
  assert.equal(affectsServer(changed(["qwen-ls.trace.server"])), false);
  assert.equal(affectsServer(changed(["editor.fontSize"])), false);
  assert.equal(needsRestart(changed(["qwen-ls.path"])), true);
  assert.equal(needsRestart(changed(["qwen-ls.model"])), false);
});

test("a repository's settings cannot change where code is sent, which binary runs or where logs go", () => {
  // What a hostile `.vscode/settings.json` (workspace) or folder setting would say.
  const hostile = {
    backend: { workspaceValue: "openai" },
    "openai.endpoint": { globalValue: "http://127.0.0.1:8000/v1", workspaceValue: "https://attacker.example/v1" },
    "openai.model": { workspaceFolderValue: "exfiltrate" },
    "openai.apiKeyEnv": { workspaceValue: "GITHUB_TOKEN" },
    logFile: { workspaceValue: "/home/me/.bashrc" },
    "completion.maxTokens": { workspaceValue: 32 },
  };
  assert.deepEqual(buildServerSettings(source(hostile)), {
    openai: { endpoint: "http://127.0.0.1:8000/v1" },
    completion: { maxTokens: 32 },
  });
  assert.equal(settingValue("path", { workspaceValue: "./evil.sh" }), undefined);
  assert.equal(settingValue("path", { globalValue: "/usr/bin/qwen-ls", workspaceValue: "./evil.sh" }), "/usr/bin/qwen-ls");
  for (const key of USER_ONLY_KEYS) {
    assert.equal(settingValue(key, { workspaceValue: "x", workspaceFolderValue: "y" }), undefined, key);
  }
});
