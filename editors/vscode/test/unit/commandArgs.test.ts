/** Command arguments and results of PROTOCOL.md. */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  applyInstructionArgs,
  describeApplyResult,
  explainArgs,
  needsInstruction,
  parseApplyResult,
  parseExplainResult,
  refactorArgs,
  validateInstruction,
  withInstruction,
} from "../../src/commandArgs";

const range = { start: { line: 3, character: 0 }, end: { line: 9, character: 1 } };

test("refactor arguments: one object with uri, range and the trimmed instruction", () => {
  assert.deepEqual(refactorArgs("file:///a.rs", range, "  use early returns \n"), [
    { uri: "file:///a.rs", range, instruction: "use early returns" },
  ]);
});

test("applyInstruction arguments: uris only when there are some", () => {
  assert.deepEqual(applyInstructionArgs("rename foo to bar"), [{ instruction: "rename foo to bar" }]);
  assert.deepEqual(applyInstructionArgs("x", []), [{ instruction: "x" }]);
  assert.deepEqual(applyInstructionArgs("x", ["file:///a.rs"]), [{ instruction: "x", uris: ["file:///a.rs"] }]);
});

test("explain arguments", () => {
  assert.deepEqual(explainArgs("file:///a.py", { line: 1, character: 4 }), [{ uri: "file:///a.py", position: { line: 1, character: 4 } }]);
});

test("code-action commands without an instruction ask for one; others pass through", () => {
  assert.equal(needsInstruction("qwen-ls.refactor", [{ uri: "file:///a", range }]), true);
  assert.equal(needsInstruction("qwen-ls.refactor", []), true);
  assert.equal(needsInstruction("qwen-ls.refactor", [{ uri: "u", range, instruction: "  " }]), true);
  assert.equal(needsInstruction("qwen-ls.refactor", [{ uri: "u", range, instruction: "go" }]), false);
  assert.equal(needsInstruction("qwen-ls.applyInstruction", [{}]), true);
  assert.equal(needsInstruction("qwen-ls.completionAccepted", [{ id: "1" }]), false);
  assert.equal(needsInstruction("qwen-ls.status", []), false);
});

test("withInstruction copies the server's argument and adds the instruction", () => {
  const original = { uri: "file:///a", range };
  const args = withInstruction([original, "extra"], " do it ");
  assert.deepEqual(args, [{ uri: "file:///a", range, instruction: "do it" }, "extra"]);
  assert.deepEqual(original, { uri: "file:///a", range }, "the server's object is not mutated");
  assert.deepEqual(withInstruction([], "x"), [{ instruction: "x" }]);
});

test("instruction validation", () => {
  assert.equal(validateInstruction("add docs"), undefined);
  assert.notEqual(validateInstruction("   "), undefined);
});

test("apply results are parsed defensively", () => {
  assert.deepEqual(parseApplyResult({ applied: true }), { applied: true });
  assert.deepEqual(parseApplyResult({ applied: false, message: "document changed" }), { applied: false, message: "document changed" });
  assert.deepEqual(parseApplyResult({ applied: "yes" }), { applied: false });
  assert.equal(parseApplyResult(null).applied, false);
  assert.deepEqual(describeApplyResult({ applied: false, message: "document changed" }, "refactor"), {
    ok: false,
    text: "qwen-ls: refactor not applied: document changed",
  });
  assert.deepEqual(describeApplyResult({ applied: true }, "refactor"), { ok: true, text: "qwen-ls: refactor applied." });
});

test("explain results: markdown or nothing", () => {
  assert.equal(parseExplainResult({ markdown: "**adds** numbers" }), "**adds** numbers");
  assert.equal(parseExplainResult({ markdown: "  " }), undefined);
  assert.equal(parseExplainResult(null), undefined);
  assert.equal(parseExplainResult({ text: "x" }), undefined);
});
