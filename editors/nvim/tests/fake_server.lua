--- An in-process fake qwen-ls for the unit tests (the integration tests use the real binary). Passed to
--- vim.lsp.start as `cmd` (a function, as Neovim allows). It answers like PROTOCOL.md says the server does and
--- records what it received in `log`.
local M = {
  log = {},
  --- Items for the next inlineCompletion requests (a queue); when empty, `default_completion` is used.
  completions = {},
  default_completion = nil,
  --- Result of qwen-ls.status.
  status = { state = "ready", message = "", model = "fake-model", backend = "local", indexedFiles = 3, version = "0.0.0-fake" },
  position_encoding = "utf-16",
  --- Delay (ms) before answering inlineCompletion.
  delay_ms = 0,
  dispatchers = nil,
}

local COMMANDS = {
  "qwen-ls.refactor",
  "qwen-ls.applyInstruction",
  "qwen-ls.explain",
  "qwen-ls.completionAccepted",
  "qwen-ls.status",
  "qwen-ls.debug.dumpPrompt",
}

function M.requests(method)
  local found = {}
  for _, entry in ipairs(M.log) do
    if entry.method == method then
      table.insert(found, entry.params)
    end
  end
  return found
end

--- Sends a notification to the client (qwen-ls/status, $/progress, window/showMessage).
function M.notify(method, params)
  M.dispatchers.notification(method, params)
end

local function command_result(params)
  local command, args = params.command, params.arguments or {}
  if command == "qwen-ls.status" then
    return M.status
  elseif command == "qwen-ls.explain" then
    return { markdown = "# add\n\nAdds two numbers." }
  elseif command == "qwen-ls.completionAccepted" then
    return vim.NIL
  elseif command == "qwen-ls.refactor" then
    local arg = args[1]
    local result = M.dispatchers.server_request("workspace/applyEdit", {
      label = "qwen-ls: refactor",
      edit = { changes = { [arg.uri] = { { range = arg.range, newText = "-- refactored: " .. arg.instruction } } } },
    })
    return { applied = result and result.applied == true }
  elseif command == "qwen-ls.applyInstruction" then
    return { applied = false, message = "fake: nothing to do" }
  end
  return vim.NIL
end

local function respond(method, params)
  if method == "initialize" then
    return {
      capabilities = {
        positionEncoding = M.position_encoding,
        textDocumentSync = { openClose = true, change = 2 },
        inlineCompletionProvider = true,
        completionProvider = {},
        hoverProvider = true,
        codeActionProvider = { resolveProvider = true },
        executeCommandProvider = { commands = COMMANDS },
      },
      serverInfo = { name = "qwen-ls", version = "0.0.0-fake" },
    }
  elseif method == "textDocument/inlineCompletion" then
    local items = table.remove(M.completions, 1) or M.default_completion
    if type(items) == "function" then
      items = items(params)
    end
    return { items = items or {} }
  elseif method == "workspace/executeCommand" then
    return command_result(params)
  elseif method == "shutdown" then
    return vim.NIL
  end
  return vim.NIL
end

--- The `cmd` for vim.lsp.start.
function M.cmd(dispatchers)
  M.dispatchers = dispatchers
  local closing = false
  local next_id = 0
  return {
    request = function(method, params, callback, notify_reply_callback)
      next_id = next_id + 1
      local id = next_id
      table.insert(M.log, { method = method, params = params, id = id })
      local delay = method == "textDocument/inlineCompletion" and M.delay_ms or 0
      vim.defer_fn(function()
        local result = respond(method, params)
        callback(nil, result)
        if notify_reply_callback then
          notify_reply_callback(id)
        end
      end, delay)
      return true, id
    end,
    notify = function(method, params)
      table.insert(M.log, { method = method, params = params })
      if method == "exit" then
        closing = true
        vim.schedule(function()
          dispatchers.on_exit(0, 0)
        end)
      end
      return true
    end,
    is_closing = function()
      return closing
    end,
    terminate = function()
      closing = true
    end,
  }
end

return M
