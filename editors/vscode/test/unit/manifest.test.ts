/**
 * package.json against docs/PROTOCOL.md and against itself: every server key contributed (and nothing else),
 * defaults equal to the protocol's, and the declared minimum VS Code matching the APIs we compile against.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { CLIENT_ONLY_KEYS, SERVER_KEYS, USER_ONLY_KEYS } from "../../src/settings";

// out/test/unit → the extension's folder.
const extensionDir = path.resolve(__dirname, "..", "..", "..");
const manifest = JSON.parse(fs.readFileSync(path.join(extensionDir, "package.json"), "utf8")) as {
  engines: { vscode: string };
  contributes: {
    configuration: { properties: Record<string, { default?: unknown; type: string; scope?: string; enum?: string[] }> };
    commands: { command: string }[];
  };
  devDependencies: Record<string, string>;
  dependencies: Record<string, string>;
  activationEvents: string[];
};
const protocolPath = path.resolve(extensionDir, "..", "..", "docs", "PROTOCOL.md");

/** Rows of PROTOCOL.md's configuration table: key → default as written (backticked). */
function protocolKeys(): Map<string, string> {
  const text = fs.readFileSync(protocolPath, "utf8");
  const section = text.split("## Configuration")[1].split("\n## ")[0];
  const keys = new Map<string, string>();
  for (const line of section.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 5 || !cells[1].startsWith("`")) {
      continue;
    }
    for (const match of cells[1].matchAll(/`([^`]+)`/g)) {
      keys.set(match[1], cells[3]);
    }
  }
  return keys;
}

test("SERVER_KEYS is exactly PROTOCOL.md's configuration table", () => {
  assert.deepEqual([...SERVER_KEYS].sort(), [...protocolKeys().keys()].sort());
});

test("package.json contributes every server key and the client-only keys, nothing else", () => {
  const contributed = Object.keys(manifest.contributes.configuration.properties).sort();
  const expected = [...SERVER_KEYS, ...CLIENT_ONLY_KEYS].map((k) => `qwen-ls.${k}`).sort();
  assert.deepEqual(contributed, expected);
});

test("settings that redirect code, run a program or write files are machine-scoped: no workspace can set them", () => {
  for (const key of USER_ONLY_KEYS) {
    assert.equal(manifest.contributes.configuration.properties[`qwen-ls.${key}`].scope, "machine", key);
  }
});

/** PROTOCOL.md's keys whose type is a list of strings (`"off"`/`"lookup"`/`"draft"`): key → the strings. */
function protocolEnums(): Map<string, string[]> {
  const text = fs.readFileSync(protocolPath, "utf8");
  const section = text.split("## Configuration")[1].split("\n## ")[0];
  const enums = new Map<string, string[]>();
  for (const line of section.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 5 || !/^`"[^`]*"`(\/`"[^`]*"`)+$/.test(cells[2])) {
      continue;
    }
    const values = [...cells[2].matchAll(/`"([^`"]*)"`/g)].map((m) => m[1]);
    for (const match of cells[1].matchAll(/`([^`]+)`/g)) {
      enums.set(match[1], values);
    }
  }
  return enums;
}

test("contributed enums are the protocol's values", () => {
  const enums = protocolEnums();
  for (const key of ["dtype", "backend", "completion.speculative", "hover.speculative", "codeActions.speculative"]) {
    assert.ok(enums.has(key), `PROTOCOL.md lists the values of ${key}`);
  }
  for (const [key, values] of enums) {
    assert.deepEqual(manifest.contributes.configuration.properties[`qwen-ls.${key}`].enum, values, key);
  }
});

test("settings that name a model to load are scoped like `model`", () => {
  const properties = manifest.contributes.configuration.properties;
  for (const key of ["draftModel", "completion.model"]) {
    assert.equal(properties[`qwen-ls.${key}`].scope, properties["qwen-ls.model"].scope, key);
  }
});

test("contributed defaults equal the protocol's", () => {
  for (const [key, written] of protocolKeys()) {
    const declared = manifest.contributes.configuration.properties[`qwen-ls.${key}`].default;
    const literal = /`([^`]*)`/.exec(written)?.[1];
    assert.notEqual(literal, undefined, `PROTOCOL.md default of ${key} is not a literal`);
    const expected: unknown = JSON.parse(literal!.startsWith('"') || /^[\d.]+$|^(true|false)$/.test(literal!) ? literal! : JSON.stringify(literal));
    assert.deepEqual(declared, expected, `default of qwen-ls.${key}`);
  }
});

test("minimum VS Code is the language client's and matches @types/vscode", () => {
  const engine = manifest.engines.vscode.replace(/^[\^~>=]+/, "");
  const types = manifest.devDependencies["@types/vscode"].replace(/^[\^~>=]+/, "");
  assert.equal(types, engine, "@types/vscode must not be newer than engines.vscode, or we could call APIs older VS Codes lack");
  const clientManifest = JSON.parse(
    fs.readFileSync(path.join(extensionDir, "node_modules", "vscode-languageclient", "package.json"), "utf8"),
  ) as { version: string; engines: { vscode: string } };
  assert.equal(clientManifest.engines.vscode.replace(/^[\^~>=]+/, ""), engine, "the language client's own minimum");
  const [major, minor, patch] = clientManifest.version.split(".").map(Number);
  assert.ok(major > 10 || (major === 10 && (minor > 0 || patch >= 1)), "vscode-languageclient >= 10.0.1 (inline completions on by default)");
  const readme = fs.readFileSync(path.join(extensionDir, "README.md"), "utf8");
  assert.match(readme, new RegExp(`VS Code ${engine.replace(/\./g, "\\.")}`), "README states the minimum version");
});

test("every contributed command has a handler id of ours, distinct from the server's commands", () => {
  for (const { command } of manifest.contributes.commands) {
    assert.ok(command.startsWith("qwen-ls."));
    assert.ok(!["qwen-ls.refactor", "qwen-ls.applyInstruction", "qwen-ls.explain", "qwen-ls.status"].includes(command));
  }
});
