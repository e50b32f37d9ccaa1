--- :QwenRefactor, :QwenRefactorWorkspace, :QwenExplain, :QwenStatus, :QwenRestart. Each collects its input
--- from the editor and makes one `workspace/executeCommand` request; edits come back through the server's
--- `workspace/applyEdit`, which Neovim applies itself.
local api = vim.api
local compat = require("qwen-ls.compat")

local M = {}

--- The client for `bufnr`, or nil with a message.
local function client_for(bufnr)
  local client = compat.clients(bufnr)[1]
  if not client then
    vim.notify("qwen-ls is not attached to this buffer (:checkhealth qwen-ls)", vim.log.levels.WARN)
  end
  return client
end

--- The LSP range of a command's line range / visual selection, or an empty range at the cursor (the server
--- then takes the function around it, PROTOCOL.md).
---@param opts table nvim_create_user_command's opts (range, line1, line2)
---@param encoding string
function M.command_range(bufnr, opts, encoding)
  if not opts.range or opts.range == 0 then
    local cursor = api.nvim_win_get_cursor(0)
    local pos = compat.to_lsp(bufnr, cursor[1] - 1, cursor[2], encoding)
    return { start = pos, ["end"] = pos }
  end
  local line1, line2 = opts.line1, opts.line2
  local vstart, vend = vim.fn.getpos("'<"), vim.fn.getpos("'>")
  -- A characterwise selection that is exactly this range: keep its columns.
  if vim.fn.visualmode() == "v" and vstart[2] == line1 and vend[2] == line2 then
    local end_line = compat.line(bufnr, line2 - 1)
    -- '> is on the last selected character: the range ends after it (clamped: `$` gives a huge column).
    local end_col = math.min(vend[3], #end_line)
    local last = end_line:sub(end_col, end_col)
    if last ~= "" then
      local b = last:byte()
      local len = b < 0x80 and 1 or b < 0xE0 and 2 or b < 0xF0 and 3 or 4
      end_col = math.min(end_col - 1 + len, #end_line)
    end
    return {
      start = compat.to_lsp(bufnr, line1 - 1, vstart[3] - 1, encoding),
      ["end"] = compat.to_lsp(bufnr, line2 - 1, end_col, encoding),
    }
  end
  local last = compat.line(bufnr, line2 - 1)
  return {
    start = { line = line1 - 1, character = 0 },
    ["end"] = compat.to_lsp(bufnr, line2 - 1, #last, encoding),
  }
end

--- Builds `qwen-ls.refactor` arguments.
function M.refactor_args(uri, range, instruction)
  return { { uri = uri, range = range, instruction = vim.trim(instruction) } }
end

--- Builds `qwen-ls.applyInstruction` arguments.
function M.apply_instruction_args(instruction, uris)
  local arg = { instruction = vim.trim(instruction) }
  if uris and #uris > 0 then
    arg.uris = uris
  end
  return { arg }
end

--- Reports `{ applied, message }` results.
function M.report_apply(result, what)
  if type(result) == "table" and result.message == require("qwen-ls.review").HELD then
    return -- the review buffer says what to do
  end
  if type(result) == "table" and result.applied == true then
    vim.notify(result.message or ("qwen-ls: " .. what .. " applied"), vim.log.levels.INFO)
  else
    local message = type(result) == "table" and result.message or nil
    vim.notify(("qwen-ls: %s not applied%s"):format(what, message and (": " .. message) or ""), vim.log.levels.WARN)
  end
end

--- Sends a server command; `on_result(result)` (default: report an apply result).
function M.execute(client_id, command, args, bufnr, on_result)
  local client = vim.lsp.get_client_by_id(client_id)
  if not client then
    return
  end
  compat.request(client, "workspace/executeCommand", { command = command, arguments = args }, function(err, result)
    if err then
      vim.notify(("qwen-ls: %s failed: %s"):format(command, err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    if on_result then
      on_result(result)
    elseif command == "qwen-ls.refactor" or command == "qwen-ls.applyInstruction" then
      M.report_apply(result, command == "qwen-ls.refactor" and "refactor" or "workspace edit")
    end
  end, bufnr)
end

--- Runs `fn(instruction)` with the command's argument, or with what the user types when there is none.
local function with_instruction(args, fn)
  if args and vim.trim(args) ~= "" then
    return fn(args)
  end
  vim.ui.input({ prompt = "qwen-ls instruction: " }, function(input)
    if input and vim.trim(input) ~= "" then
      fn(input)
    end
  end)
end

function M.refactor(opts)
  local bufnr = api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    return
  end
  local range = M.command_range(bufnr, opts, client.offset_encoding)
  with_instruction(opts.args, function(instruction)
    M.execute(client.id, "qwen-ls.refactor", M.refactor_args(vim.uri_from_bufnr(bufnr), range, instruction), bufnr)
  end)
end

function M.refactor_workspace(opts)
  local bufnr = api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    return
  end
  with_instruction(opts.args, function(instruction)
    M.execute(client.id, "qwen-ls.applyInstruction", M.apply_instruction_args(instruction), bufnr)
  end)
end

--- Window id of the last explanation (tests read it).
M.explain_win = nil

function M.explain()
  local bufnr = api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    return
  end
  local cursor = api.nvim_win_get_cursor(0)
  local args = {
    { uri = vim.uri_from_bufnr(bufnr), position = compat.to_lsp(bufnr, cursor[1] - 1, cursor[2], client.offset_encoding) },
  }
  M.execute(client.id, "qwen-ls.explain", args, bufnr, function(result)
    local markdown = type(result) == "table" and result.markdown or nil
    if type(markdown) ~= "string" or vim.trim(markdown) == "" then
      vim.notify("qwen-ls: nothing to explain here; put the cursor inside a function", vim.log.levels.INFO)
      return
    end
    local _, win = vim.lsp.util.open_floating_preview(vim.split(markdown, "\n", { plain = true }), "markdown", {
      border = "rounded",
      focus_id = "qwen-ls-explain",
      max_width = math.max(40, math.floor(vim.o.columns * 0.6)),
      max_height = math.max(10, math.floor(vim.o.lines * 0.6)),
    })
    M.explain_win = win
  end)
end

function M.show_status()
  local clients = compat.clients()
  if #clients == 0 then
    vim.notify("qwen-ls: not running", vim.log.levels.INFO)
    return
  end
  for _, client in ipairs(clients) do
    local view = require("qwen-ls.status").get(client.id):view()
    vim.notify(("%s (%s)%s"):format(view.text, client.root_dir or "?", view.detail ~= "" and (" — " .. view.detail) or ""))
  end
end

--- Creates the user commands.
---@param restart fun()
function M.create(restart)
  api.nvim_create_user_command("QwenRefactor", M.refactor, {
    nargs = "*",
    range = true,
    desc = "qwen-ls: rewrite the selection (or the function at the cursor) following an instruction",
  })
  api.nvim_create_user_command("QwenRefactorWorkspace", M.refactor_workspace, {
    nargs = "*",
    desc = "qwen-ls: apply an instruction across the workspace",
  })
  api.nvim_create_user_command("QwenExplain", M.explain, { desc = "qwen-ls: explain the function at the cursor" })
  api.nvim_create_user_command("QwenStatus", M.show_status, { desc = "qwen-ls: show the server state" })
  api.nvim_create_user_command("QwenRestart", restart, { desc = "qwen-ls: restart the server" })
end

return M
