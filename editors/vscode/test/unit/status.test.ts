/** The status-bar state machine fed by qwen-ls/status, $/progress and window/showMessage. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseStatus, phaseOfTitle, StatusModel } from "../../src/status";

test("a fresh model is stopped until a server starts", () => {
  const model = new StatusModel();
  assert.equal(model.state(), "stopped");
  model.serverStarting();
  assert.equal(model.state(), "starting");
  assert.equal(model.view().busy, true);
});

test("the usual start: loading model with percentages, indexing, ready", () => {
  const model = new StatusModel();
  model.serverStarting();
  model.progress("t1", { kind: "begin", title: "qwen-ls: loading model", percentage: 0 });
  assert.equal(model.state(), "loading-model");
  model.progress("t1", { kind: "report", message: "model.safetensors", percentage: 41.6 });
  assert.equal(model.view().text, "qwen-ls: loading model 42%");
  assert.match(model.view().tooltip, /model\.safetensors/);
  model.status({ state: "loading-model", message: "" });
  model.progress("t1", { kind: "end" });
  model.status({ state: "indexing", message: "" });
  model.progress(7, { kind: "begin", title: "qwen-ls: indexing", message: "12/40 files" });
  assert.equal(model.state(), "indexing");
  model.progress(7, { kind: "end" });
  model.status({ state: "ready", message: "Qwen3-Coder tiny" });
  const view = model.view();
  assert.deepEqual([view.state, view.text, view.busy], ["ready", "qwen-ls", false]);
  assert.equal(view.tooltip, "Qwen3-Coder tiny");
});

test("loading the model outranks indexing when both run", () => {
  const model = new StatusModel();
  model.serverStarting();
  model.progress("idx", { kind: "begin", title: "qwen-ls: indexing" });
  model.progress("mdl", { kind: "begin", title: "qwen-ls: loading model" });
  assert.equal(model.state(), "loading-model");
  model.progress("mdl", { kind: "end" });
  assert.equal(model.state(), "indexing");
});

test("progress that ends falls back to the last reported status", () => {
  const model = new StatusModel();
  model.serverStarting();
  model.status({ state: "ready", message: "" });
  model.progress("x", { kind: "begin", title: "qwen-ls: indexing" });
  assert.equal(model.state(), "indexing");
  model.progress("x", { kind: "end" });
  assert.equal(model.state(), "ready");
});

test("reports for unknown tokens and other titles are harmless", () => {
  const model = new StatusModel();
  model.serverStarting();
  model.status({ state: "ready", message: "" });
  model.progress("nope", { kind: "report", percentage: 50 });
  model.progress("nope", { kind: "end" });
  model.progress("o", { kind: "begin", title: "qwen-ls: refactoring" });
  assert.equal(model.state(), "ready");
});

test("an error popup marks the error until the server reports a healthy state", () => {
  const model = new StatusModel();
  model.serverStarting();
  model.showMessage(2, "remote is slow"); // a warning does not change the state
  assert.equal(model.state(), "starting");
  model.showMessage(1, "model /x not found: set qwen-ls.model");
  assert.equal(model.state(), "error");
  assert.match(model.view().tooltip, /set qwen-ls\.model/);
  model.progress("t", { kind: "begin", title: "qwen-ls: loading model" });
  assert.equal(model.state(), "error", "an error is not hidden by a later progress");
  model.status({ state: "error", message: "model missing" });
  assert.equal(model.state(), "error");
  model.status({ state: "ready", message: "" });
  model.progress("t", { kind: "end" });
  assert.equal(model.state(), "ready");
});

test("status error uses the status message", () => {
  const model = new StatusModel();
  model.serverStarting();
  model.status({ state: "error", message: "cannot reach http://127.0.0.1:8000/v1" });
  assert.deepEqual([model.view().state, model.view().tooltip], ["error", "cannot reach http://127.0.0.1:8000/v1"]);
});

test("a stopped server forgets its phases; a restart forgets its errors", () => {
  const model = new StatusModel();
  model.serverStarting();
  model.showMessage(1, "boom");
  model.progress("t", { kind: "begin", title: "qwen-ls: indexing" });
  model.serverStopped("qwen-ls exited; restarting in 2 s (attempt 2).");
  assert.equal(model.state(), "stopped");
  assert.match(model.view().tooltip, /restarting in 2 s/);
  model.serverStarting();
  assert.equal(model.state(), "starting");
});

test("malformed status payloads are ignored", () => {
  const model = new StatusModel();
  model.serverStarting();
  for (const bad of [null, 3, "ready", {}, { state: "sleeping" }, { state: 1 }]) {
    model.status(bad);
  }
  assert.equal(model.state(), "starting");
  assert.deepEqual(parseStatus({ state: "ready" }), { state: "ready", message: "" });
});

test("progress titles map to phases", () => {
  assert.equal(phaseOfTitle("qwen-ls: loading model"), "loading-model");
  assert.equal(phaseOfTitle("qwen-ls: downloading Qwen/Qwen3-Coder"), "loading-model");
  assert.equal(phaseOfTitle("qwen-ls: indexing"), "indexing");
  assert.equal(phaseOfTitle("qwen-ls: thinking"), "other");
});
