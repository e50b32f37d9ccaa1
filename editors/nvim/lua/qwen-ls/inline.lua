--- Ghost text, whichever implementation runs: Neovim's own `vim.lsp.inline_completion` (0.12+) or ours
--- (`qwen-ls.ghost`). Both get the same keymaps: accept, accept-word, next, prev, dismiss. The keymaps are
--- buffer-local insert-mode `expr` maps that fall back to the key itself when there is nothing to accept, so
--- `<Tab>` still indents.
local api = vim.api
local ghost = require("qwen-ls.ghost")

local M = {}

--- Neovim's module, or nil before 0.12.
function M.native()
  local ok, mod = pcall(function()
    return vim.lsp.inline_completion
  end)
  if ok and type(mod) == "table" and type(mod.enable) == "function" and type(mod.get) == "function" then
    return mod
  end
  return nil
end

-- Mode per buffer: "native" | "extmark".
M.mode = {}

local function native_item_to_norm(item, bufnr)
  local text = type(item.insert_text) == "table" and item.insert_text.value or item.insert_text
  local cursor = api.nvim_win_get_cursor(0)
  local start = { cursor[1] - 1, cursor[2] }
  if item.range then
    start = { item.range.start.row, item.range.start.col }
  end
  return { text = text or "", start = start, bufnr = bufnr }
end

--- Native accept-word: insert the next word of the current item ourselves; the rest comes back on the next
--- automatic request (the server's forward cache makes that cheap).
local function native_accept_word(native, bufnr)
  return native.get({
    bufnr = bufnr,
    on_accept = function(item)
      local norm = native_item_to_norm(item, bufnr)
      local cursor = api.nvim_win_get_cursor(0)
      local row, col = cursor[1] - 1, cursor[2]
      local ok, typed = pcall(api.nvim_buf_get_text, bufnr, norm.start[1], norm.start[2], row, col, {})
      local rest = ok and ghost.remaining(norm, table.concat(typed, "\n")) or nil
      if not rest or rest == "" then
        return
      end
      local word = ghost.first_word(rest)
      local lines = vim.split(word, "\n", { plain = true })
      api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
      ghost.record_partial(item.client_id, item.command, "word", word)
      api.nvim_win_set_cursor(0, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
    end,
  })
end

--- Actions by name, for the current buffer. Each returns whether it did something.
M.actions = {
  accept = function(bufnr)
    if M.mode[bufnr] == "native" then
      return M.native().get({ bufnr = bufnr })
    end
    if ghost.has_suggestion(bufnr) then
      -- expr mappings run under textlock: edit the buffer right after.
      vim.schedule(function()
        ghost.accept(bufnr)
      end)
      return true
    end
    return false
  end,
  accept_word = function(bufnr)
    if M.mode[bufnr] == "native" then
      return native_accept_word(M.native(), bufnr)
    end
    if ghost.has_suggestion(bufnr) then
      vim.schedule(function()
        ghost.accept_word(bufnr)
      end)
      return true
    end
    return false
  end,
  next = function(bufnr)
    if M.mode[bufnr] == "native" then
      M.native().select({ bufnr = bufnr, count = 1 })
      return true
    end
    vim.schedule(function()
      ghost.next(bufnr, 1)
    end)
    return true
  end,
  prev = function(bufnr)
    if M.mode[bufnr] == "native" then
      M.native().select({ bufnr = bufnr, count = -1 })
      return true
    end
    vim.schedule(function()
      ghost.next(bufnr, -1)
    end)
    return true
  end,
  dismiss = function(bufnr)
    if M.mode[bufnr] == "native" then
      -- Neovim has no public "hide"; re-enabling drops the current item and its extmark.
      local native = M.native()
      native.enable(false, { bufnr = bufnr })
      native.enable(true, { bufnr = bufnr })
      return true
    end
    return ghost.dismiss(bufnr)
  end,
}

local DESCRIPTIONS = {
  accept = "qwen-ls: accept suggestion",
  accept_word = "qwen-ls: accept next word",
  next = "qwen-ls: next suggestion",
  prev = "qwen-ls: previous suggestion",
  dismiss = "qwen-ls: dismiss suggestion",
}

--- Sets the buffer-local insert-mode keymaps of `keymaps` ({ accept = "<Tab>", ... } or false per name).
function M.set_keymaps(bufnr, keymaps)
  for name, lhs in pairs(keymaps) do
    if lhs then
      vim.keymap.set("i", lhs, function()
        if M.actions[name](bufnr) then
          return ""
        end
        return lhs
      end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = DESCRIPTIONS[name] })
    end
  end
end

--- Turns ghost text on for `bufnr` with `client`.
---@param mode "native"|"extmark"
function M.attach(_client, bufnr, mode, options)
  M.mode[bufnr] = mode
  if mode == "native" then
    -- Per buffer: Neovim treats buffers as "off" unless enabled, whatever the client says.
    M.native().enable(true, { bufnr = bufnr })
  else
    ghost.attach(bufnr, { debounce_ms = options.ghost_text.debounce_ms, hl_group = options.ghost_text.hl_group })
  end
  M.set_keymaps(bufnr, options.keymaps)
end

function M.detach(bufnr)
  if M.mode[bufnr] == "extmark" then
    ghost.detach(bufnr)
  end
  M.mode[bufnr] = nil
end

return M
