/** Finding the server binary. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { expandPath, ResolveEnv, resolveServerPath } from "../../src/serverPath";

function env(executables: string[], pathVar = "/usr/local/bin:/usr/bin"): ResolveEnv {
  return {
    pathVar,
    platform: "linux",
    home: "/home/u",
    workspaceFolder: "/ws",
    isExecutable: (file) => executables.includes(file),
  };
}

test("the setting wins and is expanded", () => {
  assert.deepEqual(resolveServerPath("~/bin/qwen-ls", env(["/home/u/bin/qwen-ls"])), { ok: true, path: "/home/u/bin/qwen-ls" });
  assert.deepEqual(resolveServerPath("${workspaceFolder}/target/debug/qwen-ls", env(["/ws/target/debug/qwen-ls"])), {
    ok: true,
    path: "/ws/target/debug/qwen-ls",
  });
});

test("a setting that points nowhere is an error naming the setting", () => {
  const result = resolveServerPath("/nope/qwen-ls", env(["/usr/bin/qwen-ls"]));
  assert.equal(result.ok, false);
  assert.match(result.ok ? "" : result.message, /qwen-ls\.path/);
});

test("otherwise the first qwen-ls on PATH", () => {
  assert.deepEqual(resolveServerPath("", env(["/usr/bin/qwen-ls", "/opt/qwen-ls"])), { ok: true, path: "/usr/bin/qwen-ls" });
  assert.deepEqual(resolveServerPath(undefined, env(["/usr/local/bin/qwen-ls", "/usr/bin/qwen-ls"])), {
    ok: true,
    path: "/usr/local/bin/qwen-ls",
  });
});

test("not on PATH: an error that says how to fix it", () => {
  const result = resolveServerPath("  ", env([], "::/empty"));
  assert.equal(result.ok, false);
  assert.match(result.ok ? "" : result.message, /not found on PATH.*qwen-ls\.path/);
});

test("expandPath leaves ordinary paths alone", () => {
  assert.equal(expandPath(" /usr/bin/qwen-ls ", { home: "/h", workspaceFolder: undefined }), "/usr/bin/qwen-ls");
  assert.equal(expandPath("~", { home: "/h", workspaceFolder: undefined }), "/h");
});
