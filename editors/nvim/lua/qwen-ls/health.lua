--- :checkhealth qwen-ls — Neovim version, setup, binary and its version, and for each running client the
--- server's own state (`qwen-ls.status`): model, backend, index.
local compat = require("qwen-ls.compat")

local M = {}

local health = vim.health

--- Runs `cmd` and returns its first output line, or nil and an error.
local function run_version(cmd)
  if vim.system then
    local ok, proc = pcall(vim.system, cmd, { text = true })
    if not ok then
      return nil, tostring(proc)
    end
    local result = proc:wait(10000)
    if result.code ~= 0 then
      return nil, ("exit code %s: %s"):format(tostring(result.code), vim.trim(result.stderr or ""))
    end
    return vim.trim(vim.split(result.stdout or "", "\n")[1] or ""), nil
  end
  local out = vim.fn.system(cmd)
  if vim.v.shell_error ~= 0 then
    return nil, out
  end
  return vim.trim(vim.split(out, "\n")[1] or ""), nil
end

local function check_server(client)
  health.start(("qwen-ls: client %d (%s)"):format(client.id, client.root_dir or "no root"))
  local result, err = compat.request_sync(client, "workspace/executeCommand", { command = "qwen-ls.status", arguments = {} }, 10000)
  if not result then
    health.error("qwen-ls.status failed: " .. tostring(err), { "See :LspLog, or set settings.logFile" })
    return
  end
  require("qwen-ls.status").get(client.id):status(result)
  local model = result.model ~= nil and result.model ~= vim.NIL and tostring(result.model) or "?"
  local backend = result.backend ~= nil and result.backend ~= vim.NIL and tostring(result.backend) or "?"
  health.info(("server %s, backend %s, position encoding %s"):format(tostring(result.version or "?"), backend, client.offset_encoding))
  if result.state == "ready" then
    health.ok(("model: %s (ready)"):format(model))
  elseif result.state == "error" then
    health.error(("model: %s — %s"):format(model, result.message or "error"), {
      "Set settings.model to a model directory, a .gguf file or a Hugging Face id",
    })
  else
    health.warn(("model: %s — %s%s"):format(model, result.state, result.message and result.message ~= "" and (": " .. result.message) or ""), {
      "The model is still loading or the workspace is being indexed; run :checkhealth qwen-ls again shortly",
    })
  end
  local files = tonumber(result.indexedFiles)
  if result.state == "ready" and files then
    health.ok(("index: %d files"):format(files))
  elseif result.state == "indexing" then
    health.warn(("index: in progress (%s files so far)"):format(files and tostring(files) or "?"))
  elseif files then
    health.info(("index: %d files"):format(files))
  end
end

function M.check()
  health.start("qwen-ls")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if compat.has(compat.MIN_VERSION) then
    health.ok(("Neovim %s (needs %s+)"):format(version, compat.MIN_VERSION))
  else
    health.error(("Neovim %s is older than %s"):format(version, compat.MIN_VERSION), { "Upgrade Neovim" })
    return
  end

  local qwen = require("qwen-ls")
  local config = qwen.config
  if not config then
    health.warn('setup() has not been called', { 'Add require("qwen-ls").setup({}) to your config' })
    config = require("qwen-ls.config").resolve({})
  else
    health.ok("setup() called; filetypes: " .. table.concat(config.filetypes, ", "))
  end

  local binary = require("qwen-ls.config").binary(config)
  local exe = vim.fn.exepath(binary)
  if exe == "" then
    health.error(("binary not found: %s"):format(binary), {
      "Install qwen-ls (cargo install --path server) so it is on $PATH, or pass setup({ path = '/path/to/qwen-ls' })",
    })
  else
    health.ok("binary: " .. exe)
    local out, err = run_version({ exe, "--version" })
    if out then
      health.ok("version: " .. out)
    else
      health.error(("`%s --version` failed: %s"):format(exe, tostring(err)))
    end
  end

  local mode = qwen.ghost_mode and qwen.ghost_mode() or nil
  health.info("ghost text: " .. (mode == "native" and "Neovim's vim.lsp.inline_completion" or mode == "extmark" and "qwen-ls extmarks" or "off"))

  local clients = compat.clients()
  if #clients == 0 then
    health.warn("no qwen-ls client is running", { "Open a file of one of the configured filetypes" })
    return
  end
  for _, client in ipairs(clients) do
    check_server(client)
  end
end

return M
