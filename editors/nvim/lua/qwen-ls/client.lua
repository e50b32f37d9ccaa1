--- Starting the server for a buffer (`vim.lsp.start`, which reuses a running client with the same name and
--- root), and the handlers that feed the status model. Settings go out as `init_options` and, whole, in
--- `workspace/didChangeConfiguration` (PROTOCOL.md: the object is not a patch).
local api = vim.api
local compat = require("qwen-ls.compat")
local status = require("qwen-ls.status")

local M = {}

--- The workspace root for `bufnr`: the nearest ancestor with a marker, else the file's directory.
function M.root_dir(bufnr, markers)
  local name = api.nvim_buf_get_name(bufnr)
  local dir = name ~= "" and vim.fs.dirname(name) or vim.fn.getcwd()
  local found = vim.fs.find(markers, { path = dir, upward = true, limit = 1 })[1]
  return found and vim.fs.dirname(found) or dir
end

--- `settings` ready for JSON: an empty table must go out as `{}`, not `[]`.
function M.json_object(tbl)
  if next(tbl) == nil then
    return vim.empty_dict()
  end
  return tbl
end

--- Client capabilities: the defaults, plus inline completion where Neovim does not announce it itself
--- (our extmark implementation handles it), plus file watching for the server when `watch_files` is on.
function M.capabilities(config)
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  -- Refactor edits may ask for review (change annotations, which only versioned `documentChanges` carry):
  -- review.lua shows them before they apply. Neovim applies `documentChanges` itself but does not announce them.
  caps.workspace = caps.workspace or {}
  caps.workspace.workspaceEdit = vim.tbl_extend("force", caps.workspace.workspaceEdit or {}, {
    documentChanges = true,
    changeAnnotationSupport = { groupsOnLabel = false },
  })
  if config and config.watch_files then
    caps.workspace.didChangeWatchedFiles = vim.tbl_extend("force", caps.workspace.didChangeWatchedFiles or {}, {
      dynamicRegistration = true,
      relativePatternSupport = true,
    })
  end
  return caps
end

--- The LSP language ids the server announced at initialize, or nil (an older server: the configured
--- filetypes stand).
function M.served_languages(client)
  local caps = client.server_capabilities or {}
  local ids = vim.tbl_get(caps, "experimental", "qwenLs", "languageIds")
  if type(ids) ~= "table" then
    return nil
  end
  return ids
end

--- Whether `client` serves `filetype` (Neovim's filetypes are the LSP language ids for these languages).
function M.serves(client, filetype)
  local served = M.served_languages(client)
  return served == nil or vim.tbl_contains(served, filetype)
end

--- Client-side handlers of the server's instruction commands: code actions carry them without an instruction
--- (PROTOCOL.md), so ask for one and send the command on.
local function instruction_command(command, ctx)
  local args = vim.deepcopy(command.arguments or {})
  local first = type(args[1]) == "table" and args[1] or {}
  local function send(instruction)
    if not instruction or vim.trim(instruction) == "" then
      return
    end
    first.instruction = vim.trim(instruction)
    args[1] = first
    require("qwen-ls.commands").execute(ctx.client_id, command.command, args, ctx.bufnr)
  end
  if type(first.instruction) == "string" and vim.trim(first.instruction) ~= "" then
    send(first.instruction)
  else
    vim.ui.input({ prompt = "qwen-ls instruction: " }, send)
  end
end

--- Handlers that update the status model and then do what Neovim would have done anyway.
local function handlers()
  local default = vim.lsp.handlers
  return {
    ["qwen-ls/status"] = function(_, result, ctx)
      status.get(ctx.client_id):status(result)
      api.nvim_exec_autocmds("User", { pattern = "QwenStatus", modeline = false })
    end,
    ["$/progress"] = function(err, result, ctx, config)
      if result and result.value then
        status.get(ctx.client_id):progress(result.token, result.value)
        api.nvim_exec_autocmds("User", { pattern = "QwenStatus", modeline = false })
      end
      return default["$/progress"](err, result, ctx, config)
    end,
    ["workspace/applyEdit"] = function(err, result, ctx, config)
      return require("qwen-ls.review").handler(err, result, ctx, config)
    end,
    ["window/showMessage"] = function(err, result, ctx, config)
      if result then
        status.get(ctx.client_id):show_message(result.type, result.message)
        api.nvim_exec_autocmds("User", { pattern = "QwenStatus", modeline = false })
      end
      return default["window/showMessage"](err, result, ctx, config)
    end,
  }
end

--- Asks the server for its state (`qwen-ls.status`) and records it.
function M.refresh_status(client)
  compat.request(client, "workspace/executeCommand", { command = "qwen-ls.status", arguments = {} }, function(err, result)
    if not err and result then
      status.get(client.id):status(result)
    end
  end)
end

--- Starts (or reuses) the client for `bufnr`. Returns the client id, or nil.
---@param config table resolved options
---@param on_attach fun(client, bufnr)
function M.start(bufnr, config, on_attach)
  local settings = M.json_object(config.settings)
  return vim.lsp.start({
    name = "qwen-ls",
    cmd = require("qwen-ls.config").cmd(config),
    root_dir = M.root_dir(bufnr, config.root_markers),
    init_options = settings,
    settings = { ["qwen-ls"] = settings },
    capabilities = M.capabilities(config),
    handlers = handlers(),
    commands = {
      ["qwen-ls.refactor"] = instruction_command,
      ["qwen-ls.applyInstruction"] = instruction_command,
    },
    on_init = function(client)
      status.get(client.id):server_starting()
      M.refresh_status(client)
    end,
    on_attach = on_attach,
    on_exit = function(code, signal, client_id)
      local reason = ("qwen-ls exited (code %d, signal %d)"):format(code or -1, signal or 0)
      status.get(client_id):server_stopped(reason)
      if code ~= 0 then
        vim.schedule(function()
          vim.notify(reason .. "; :QwenRestart to start it again, :checkhealth qwen-ls to see why", vim.log.levels.WARN)
        end)
      end
    end,
  }, { bufnr = bufnr })
end

--- Sends the whole settings object to every running client.
function M.push_settings(settings)
  local object = M.json_object(settings)
  for _, client in ipairs(compat.clients()) do
    if compat.has("0.11") then
      client.settings = { ["qwen-ls"] = object }
    else
      client.config.settings = { ["qwen-ls"] = object }
    end
    compat.notify(client, "workspace/didChangeConfiguration", { settings = { ["qwen-ls"] = object } })
  end
end

return M
