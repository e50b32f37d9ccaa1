--- Reviewable refactors: an edit from the server whose change annotation asks for confirmation
--- (`needsConfirmation`, sent while the server setting `codeActions.preview` is on) is not applied at once. Its
--- diff opens in a scratch buffer (`qwen-ls://review`); `a` (or `<CR>`) applies it, `q` discards it. The
--- server's `workspace/applyEdit` request is answered at once with `applied = false` and the reason
--- `HELD` (Neovim's client cannot answer a server request later), which the refactor commands report as
--- "ready for review" rather than as a failure. The edit keeps its document versions: if a buffer changed
--- in between, Neovim refuses that part when it is applied.
local api = vim.api

local M = {}

--- The failure reason the plugin answers a held edit with.
M.HELD = "held for review in the qwen-ls diff buffer"

--- The review buffer of the last held edit (tests read it).
M.bufnr = nil

--- Whether `edit` (a WorkspaceEdit) asks for confirmation.
function M.needs_review(edit)
  for _, annotation in pairs(type(edit) == "table" and edit.changeAnnotations or {}) do
    if type(annotation) == "table" and annotation.needsConfirmation == true then
      return true
    end
  end
  return false
end

--- `edit` without its change annotations: the user confirmed in the review buffer already (Neovim 0.12
--- would otherwise ask again, with a blocking prompt).
function M.confirmed(edit)
  local copy = vim.deepcopy(edit)
  copy.changeAnnotations = nil
  for _, change in ipairs(copy.documentChanges or {}) do
    change.annotationId = nil
    for _, text_edit in ipairs(change.edits or {}) do
      text_edit.annotationId = nil
    end
  end
  return copy
end

local function text_of(lines)
  return table.concat(lines, "\n") .. "\n"
end

local diff = (vim.text and vim.text.diff) or vim.diff

--- The unified diff of `edit` against the buffers' current text, as lines.
function M.diff_lines(edit, encoding)
  local out = {}
  for _, change in ipairs(M.confirmed(edit).documentChanges or {}) do
    if change.textDocument and change.edits then
      local uri = change.textDocument.uri
      local bufnr = vim.uri_to_bufnr(uri)
      vim.fn.bufload(bufnr)
      local before = api.nvim_buf_get_lines(bufnr, 0, -1, false)
      local scratch = api.nvim_create_buf(false, true)
      api.nvim_buf_set_lines(scratch, 0, -1, false, before)
      vim.lsp.util.apply_text_edits(change.edits, scratch, encoding)
      local after = api.nvim_buf_get_lines(scratch, 0, -1, false)
      api.nvim_buf_delete(scratch, { force = true })
      local path = vim.fn.fnamemodify(vim.uri_to_fname(uri), ":~:.")
      table.insert(out, "--- a/" .. path)
      table.insert(out, "+++ b/" .. path)
      local hunks = diff(text_of(before), text_of(after), { result_type = "unified", ctxlen = 3 })
      vim.list_extend(out, vim.split(vim.trim(hunks or ""), "\n", { plain = true }))
    end
  end
  return out
end

--- Shows `edit` for review; `a`/`<CR>` applies it with `encoding`, `q` discards it.
function M.show(edit, encoding)
  local lines = M.diff_lines(edit, encoding)
  local bufnr = api.nvim_create_buf(false, true)
  api.nvim_buf_set_name(bufnr, ("qwen-ls://review/%d"):format(bufnr))
  api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.bo[bufnr].filetype = "diff"
  vim.bo[bufnr].modifiable = false
  vim.bo[bufnr].bufhidden = "wipe"
  local previous = api.nvim_get_current_win()
  vim.cmd("botright split")
  api.nvim_win_set_buf(0, bufnr)
  M.bufnr = bufnr
  local function close()
    if api.nvim_buf_is_valid(bufnr) then
      api.nvim_buf_delete(bufnr, { force = true })
    end
    if api.nvim_win_is_valid(previous) then
      api.nvim_set_current_win(previous)
    end
  end
  local function apply()
    close()
    vim.lsp.util.apply_workspace_edit(M.confirmed(edit), encoding)
    vim.notify("qwen-ls: refactor applied", vim.log.levels.INFO)
  end
  local function discard()
    close()
    vim.notify("qwen-ls: refactor discarded", vim.log.levels.INFO)
  end
  for _, key in ipairs({ "a", "<CR>" }) do
    vim.keymap.set("n", key, apply, { buffer = bufnr, desc = "qwen-ls: apply this change" })
  end
  vim.keymap.set("n", "q", discard, { buffer = bufnr, desc = "qwen-ls: discard this change" })
  vim.notify("qwen-ls: review the change: a applies it, q discards it", vim.log.levels.INFO)
end

--- The `workspace/applyEdit` handler: held for review when asked, else Neovim's own.
function M.handler(err, result, ctx, config)
  if result and M.needs_review(result.edit) then
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    local encoding = client and client.offset_encoding or "utf-16"
    -- Windows cannot be opened while the client dispatches a server request: show it right after.
    vim.schedule(function()
      local ok, problem = pcall(M.show, result.edit, encoding)
      if not ok then
        vim.notify("qwen-ls: cannot show the change for review: " .. tostring(problem), vim.log.levels.ERROR)
      end
    end)
    return { applied = false, failureReason = M.HELD }
  end
  return vim.lsp.handlers["workspace/applyEdit"](err, result, ctx, config)
end

return M
