--- Ghost text for Neovim without `vim.lsp.inline_completion` (0.10, 0.11), or when asked for with
--- `ghost_text.mode = "extmark"`: `textDocument/inlineCompletion` requests on typing, the suggestion drawn with
--- an inline extmark (first line) and virtual lines (the rest), and accept / accept-word / next / prev / dismiss.
---
--- Rules that keep it honest:
--- - a response is shown only if the buffer (changedtick) and cursor are what they were at the request —
---   a suggestion for older text is never drawn;
--- - typing the suggestion's own next characters keeps it (no new request, no flicker);
--- - one request in flight per buffer: a new one cancels the old (`$/cancelRequest`).
local api = vim.api
local compat = require("qwen-ls.compat")

local M = {}

M.ns = api.nvim_create_namespace("qwen-ls.ghost")

--- Per-buffer state: { items, index, pending = {client, id}, timer, suppressed }
M.state = {}

M.options = { debounce_ms = 30, hl_group = "Comment" }

local TRIGGER_INVOKED, TRIGGER_AUTOMATIC = 1, 2

--- LSP item → { text, start = {row, col}, end_ = {row, col}, tail, command } in bytes, 0-based.
--- `tail`: bytes the item replaces after the cursor on the cursor's row (e.g. an auto-closed bracket).
---@param item table InlineCompletionItem
---@param bufnr integer
---@param encoding string the client's offset encoding
---@param cursor integer[] {row, col} 0-based at request time
function M.normalize(item, bufnr, encoding, cursor)
  local text = item.insertText
  if type(text) == "table" then
    -- A snippet (StringValue): show and insert its text; placeholders are rare in completions.
    text = text.value or ""
  end
  if type(text) ~= "string" then
    return nil
  end
  local start, end_ = { cursor[1], cursor[2] }, { cursor[1], cursor[2] }
  if type(item.range) == "table" then
    start = compat.from_lsp(bufnr, item.range.start, encoding)
    end_ = compat.from_lsp(bufnr, item.range["end"], encoding)
  end
  local tail = 0
  if end_[1] == cursor[1] and end_[2] > cursor[2] then
    tail = end_[2] - cursor[2]
  end
  return { text = text, start = start, end_ = end_, tail = tail, command = item.command }
end

--- What is left to show of `norm` once `typed` (the buffer text from the item's start to the cursor) is there;
--- nil when the user typed something else.
---@return string?
function M.remaining(norm, typed)
  if typed == nil or norm.text:sub(1, #typed) ~= typed then
    return nil
  end
  return norm.text:sub(#typed + 1)
end

--- Lines to draw: the first inline at the cursor, the rest as virtual lines. `after` is the buffer text right of
--- the cursor that the item replaces (`tail` bytes); when the first line ends with it (an auto-closed bracket)
--- it is not drawn twice.
---@return string[]
function M.display_lines(remaining, after)
  local lines = vim.split(remaining, "\n", { plain = true })
  if after ~= "" and #lines == 1 and lines[1]:sub(-#after) == after then
    lines[1] = lines[1]:sub(1, #lines[1] - #after)
  end
  return lines
end

--- The next "word" to accept: leading blanks plus a run of word characters, or of other non-blanks, or a
--- line break with the next line's indentation.
function M.first_word(remaining)
  return remaining:match("^\n[ \t]*") or remaining:match("^[ \t]*[%w_]+") or remaining:match("^[ \t]*[^%w_%s]+")
    or remaining:match("^[ \t]+") or remaining
end

local function cursor0(win)
  local pos = api.nvim_win_get_cursor(win or 0)
  return { pos[1] - 1, pos[2] }
end

--- Text from `start` to `cursor` in the buffer, or nil if the cursor is before `start`.
local function typed_text(bufnr, start, cursor)
  if cursor[1] < start[1] or (cursor[1] == start[1] and cursor[2] < start[2]) then
    return nil
  end
  local ok, lines = pcall(api.nvim_buf_get_text, bufnr, start[1], start[2], cursor[1], cursor[2], {})
  if not ok then
    return nil
  end
  return table.concat(lines, "\n")
end

local function get(bufnr)
  local st = M.state[bufnr]
  if not st then
    st = { items = nil, index = 1 }
    M.state[bufnr] = st
  end
  return st
end

local function current(bufnr)
  local st = M.state[bufnr]
  return st and st.items and st.items[st.index] or nil
end

--- Removes the drawing (the suggestion itself is kept).
function M.hide(bufnr)
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

--- Draws the current suggestion at the cursor; returns false (and drops it) when it no longer fits.
function M.render(bufnr)
  M.hide(bufnr)
  local item = current(bufnr)
  if not item or api.nvim_get_current_buf() ~= bufnr then
    return false
  end
  local cursor = cursor0()
  local rest = M.remaining(item, typed_text(bufnr, item.start, cursor))
  if rest == nil or rest == "" then
    get(bufnr).items = nil
    return false
  end
  local line = compat.line(bufnr, cursor[1])
  local after = line:sub(cursor[2] + 1, cursor[2] + item.tail)
  local lines = M.display_lines(rest, after)
  local hl = M.options.hl_group
  local virt_lines = {}
  for i = 2, #lines do
    table.insert(virt_lines, { { lines[i], hl } })
  end
  api.nvim_buf_set_extmark(bufnr, M.ns, cursor[1], cursor[2], {
    virt_text = lines[1] ~= "" and { { lines[1], hl } } or nil,
    virt_text_pos = lines[1] ~= "" and "inline" or nil,
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = "combine",
    priority = 200,
  })
  return true
end

--- The text currently drawn (for tests and statuslines): first line and virtual lines joined by "\n".
function M.shown_text(bufnr)
  local marks = api.nvim_buf_get_extmarks(bufnr, M.ns, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local details = marks[1][4]
  local parts = { details.virt_text and details.virt_text[1][1] or "" }
  for _, vl in ipairs(details.virt_lines or {}) do
    table.insert(parts, vl[1][1])
  end
  return table.concat(parts, "\n")
end

function M.has_suggestion(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  return current(bufnr) ~= nil and #api.nvim_buf_get_extmarks(bufnr, M.ns, 0, -1, {}) > 0
end

local function cancel_pending(st)
  if st.pending then
    pcall(compat.cancel_request, st.pending.client, st.pending.id)
    st.pending = nil
  end
end

local function stop_timer(st)
  if st.timer then
    st.timer:stop()
    if not st.timer:is_closing() then
      st.timer:close()
    end
    st.timer = nil
  end
end

--- Forgets the suggestion and any request in flight.
function M.clear(bufnr)
  local st = M.state[bufnr]
  if st then
    cancel_pending(st)
    stop_timer(st)
    st.items = nil
  end
  M.hide(bufnr)
end

--- Handles an inlineCompletion response (exposed for tests).
---@param ctx table { bufnr, client, changedtick, cursor }
function M.on_response(ctx, err, result)
  local st = get(ctx.bufnr)
  st.pending = nil
  if err or not result then
    return
  end
  -- Stale: the buffer or the cursor moved since the request.
  if not api.nvim_buf_is_valid(ctx.bufnr) or api.nvim_buf_get_changedtick(ctx.bufnr) ~= ctx.changedtick then
    return
  end
  if api.nvim_get_current_buf() ~= ctx.bufnr or not vim.deep_equal(cursor0(), ctx.cursor) then
    return
  end
  local items = {}
  for _, raw in ipairs(result.items or result) do
    local norm = M.normalize(raw, ctx.bufnr, ctx.client.offset_encoding or "utf-16", ctx.cursor)
    if norm and norm.text ~= "" then
      norm.client_id = ctx.client.id
      table.insert(items, norm)
    end
  end
  st.items, st.index = #items > 0 and items or nil, 1
  M.render(ctx.bufnr)
end

--- Sends a request for the cursor position now.
function M.request(bufnr, trigger)
  local client = compat.clients(bufnr)[1]
  if not client then
    return
  end
  local st = get(bufnr)
  cancel_pending(st)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = trigger or TRIGGER_AUTOMATIC }
  local ctx = {
    bufnr = bufnr,
    client = client,
    changedtick = api.nvim_buf_get_changedtick(bufnr),
    cursor = cursor0(),
  }
  local ok, id = compat.request(client, "textDocument/inlineCompletion", params, function(err, result)
    M.on_response(ctx, err, result)
  end, bufnr)
  if ok then
    st.pending = { client = client, id = id }
  end
end

--- Typing or moving: keep a suggestion the user is typing through, else ask again after the debounce.
function M.on_change(bufnr)
  local st = get(bufnr)
  if st.items and M.render(bufnr) then
    return
  end
  M.hide(bufnr)
  st.items = nil
  cancel_pending(st)
  stop_timer(st)
  st.timer = vim.defer_fn(function()
    st.timer = nil
    if api.nvim_buf_is_valid(bufnr) and api.nvim_get_current_buf() == bufnr and api.nvim_get_mode().mode:sub(1, 1) == "i" then
      M.request(bufnr, TRIGGER_AUTOMATIC)
    end
  end, M.options.debounce_ms)
end

local function run_command(item)
  if not item.command or not item.command.command then
    return
  end
  local client = vim.lsp.get_client_by_id(item.client_id)
  if client then
    compat.request(client, "workspace/executeCommand", {
      command = item.command.command,
      arguments = item.command.arguments,
    }, function() end)
  end
end

--- Tells the server that the next `unit` ("word" or "line") of `item`, `chars` long, was accepted
--- (`qwen-ls.completionPartiallyAccepted`: counted by `qwen-ls stats`). The id is the accept command's.
function M.record_partial(client_id, command, unit, chars)
  local arg = command and command.arguments and command.arguments[1]
  local client = vim.lsp.get_client_by_id(client_id)
  if not client or type(arg) ~= "table" or type(arg.id) ~= "string" then
    return
  end
  compat.request(client, "workspace/executeCommand", {
    command = "qwen-ls.completionPartiallyAccepted",
    arguments = { { id = arg.id, unit = unit, chars = vim.fn.strchars(chars) } },
  }, function() end)
end

--- Accepts the whole suggestion: replaces the item's range, moves the cursor after it and runs the item's
--- command (qwen-ls.completionAccepted). Returns whether there was one.
function M.accept(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local item = current(bufnr)
  if not item or not M.has_suggestion(bufnr) then
    return false
  end
  local cursor = cursor0()
  M.clear(bufnr)
  local lines = vim.split(item.text, "\n", { plain = true })
  local end_ = item.end_
  if end_[1] <= cursor[1] then
    end_ = { cursor[1], cursor[2] + item.tail }
  end
  local end_line = compat.line(bufnr, end_[1])
  api.nvim_buf_set_text(bufnr, item.start[1], item.start[2], end_[1], math.min(end_[2], #end_line), lines)
  local row = item.start[1] + #lines - 1
  local col = (#lines == 1 and item.start[2] or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { row + 1, col })
  run_command(item)
  return true
end

--- Accepts the next word; the rest stays shown (typing through it, see `on_change`).
function M.accept_word(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local item = current(bufnr)
  if not item or not M.has_suggestion(bufnr) then
    return false
  end
  local cursor = cursor0()
  local rest = M.remaining(item, typed_text(bufnr, item.start, cursor))
  if not rest or rest == "" then
    return false
  end
  local word = M.first_word(rest)
  if word == rest then
    return M.accept(bufnr)
  end
  local lines = vim.split(word, "\n", { plain = true })
  api.nvim_buf_set_text(bufnr, cursor[1], cursor[2], cursor[1], cursor[2], lines)
  local row = cursor[1] + #lines - 1
  local col = (#lines == 1 and cursor[2] or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { row + 1, col })
  M.render(bufnr)
  M.record_partial(item.client_id, item.command, "word", word)
  return true
end

--- Shows the next (or previous, `step` -1) suggestion; with only one, asks the server again.
function M.next(bufnr, step)
  bufnr = bufnr or api.nvim_get_current_buf()
  local st = get(bufnr)
  if st.items and #st.items > 1 then
    st.index = (st.index - 1 + (step or 1)) % #st.items + 1
    M.render(bufnr)
  else
    M.clear(bufnr)
    M.request(bufnr, TRIGGER_INVOKED)
  end
  return true
end

--- Hides the suggestion until the next edit.
function M.dismiss(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local had = M.has_suggestion(bufnr)
  M.clear(bufnr)
  return had
end

--- Starts watching `bufnr`.
function M.attach(bufnr, options)
  M.options = vim.tbl_extend("force", M.options, options or {})
  local group = api.nvim_create_augroup("qwen-ls.ghost." .. bufnr, { clear = true })
  api.nvim_create_autocmd({ "InsertEnter", "TextChangedI", "CursorMovedI" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.on_change(bufnr)
    end,
  })
  api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  api.nvim_create_autocmd("BufWipeout", {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
      M.state[bufnr] = nil
    end,
  })
end

function M.detach(bufnr)
  M.clear(bufnr)
  pcall(api.nvim_del_augroup_by_name, "qwen-ls.ghost." .. bufnr)
  M.state[bufnr] = nil
end

return M
