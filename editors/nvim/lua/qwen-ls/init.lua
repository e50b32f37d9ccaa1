--- qwen-ls for Neovim: `require("qwen-ls").setup({...})` starts the qwen-ls language server for the
--- configured filetypes and adds ghost-text completions, refactor commands and explanations on top of
--- Neovim's LSP client. See :help qwen-ls.
local api = vim.api
local compat = require("qwen-ls.compat")

local M = {}

--- The resolved options of the last setup() (nil before).
M.config = nil

local group = nil

--- The ghost-text implementation setup() picked ("native", "extmark" or nil when off).
function M.ghost_mode()
  if not M.config then
    return nil
  end
  return require("qwen-ls.config").ghost_mode(M.config.ghost_text, require("qwen-ls.inline").native() ~= nil)
end

local function on_attach(client, bufnr)
  if not require("qwen-ls.client").serves(client, vim.bo[bufnr].filetype) then
    -- The server does not serve this language (it announced its own list at initialize).
    vim.schedule(function()
      vim.lsp.buf_detach_client(bufnr, client.id)
    end)
    return
  end
  local mode = M.ghost_mode()
  if mode then
    require("qwen-ls.inline").attach(client, bufnr, mode, M.config)
  end
  if M.config.on_attach then
    M.config.on_attach(client, bufnr)
  end
end

--- Starts (or joins) the server for `bufnr` if its filetype is configured.
function M.attach(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if not M.config or not vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
    return nil
  end
  if vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  return require("qwen-ls.client").start(bufnr, M.config, on_attach)
end

--- Stops every qwen-ls client and starts again for the loaded buffers.
function M.restart()
  local clients = compat.clients()
  for _, client in ipairs(clients) do
    compat.stop(client)
  end
  vim.wait(5000, function()
    for _, client in ipairs(clients) do
      if not compat.is_stopped(client) then
        return false
      end
    end
    return true
  end, 50)
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) then
      M.attach(bufnr)
    end
  end
end

--- Replaces the server settings (same shape as setup's `settings`) and sends them to running servers.
function M.update_settings(settings)
  compat.validate("settings", settings, "table")
  local cfg = require("qwen-ls.config")
  local expanded = cfg.expand_dotted(settings)
  local project = cfg.project_source()
  if project then
    local ignored
    expanded, ignored = cfg.keep_user_only(expanded, M.config.settings)
    M.warn_ignored(project, ignored)
  end
  M.config.settings = expanded
  for _, key in ipairs(cfg.unknown_settings(M.config.settings)) do
    vim.notify(("qwen-ls: settings.%s is not a qwen-ls setting"):format(key), vim.log.levels.WARN)
  end
  require("qwen-ls.client").push_settings(M.config.settings)
end

--- Tells the user which keys a project-local file tried to set.
function M.warn_ignored(project, keys)
  if #keys > 0 then
    vim.notify(
      ("qwen-ls: %s may not set %s (where code is sent, which program runs, where files go): ignored; set them in your own config"):format(
        project,
        table.concat(keys, ", ")
      ),
      vim.log.levels.WARN
    )
  end
end

--- A statusline component: "qwen-ls", "qwen-ls: loading model 40%", "qwen-ls: error", or "" when not running.
function M.statusline(bufnr)
  local client = compat.clients(bufnr or api.nvim_get_current_buf())[1]
  if not client then
    return ""
  end
  return require("qwen-ls.status").get(client.id):view().text
end

--- The server's state for the current buffer: { state, text, detail, busy }, or nil.
function M.status(bufnr)
  local client = compat.clients(bufnr or api.nvim_get_current_buf())[1]
  return client and require("qwen-ls.status").get(client.id):view() or nil
end

function M.setup(opts)
  if not compat.has(compat.MIN_VERSION) then
    vim.notify(("qwen-ls needs Neovim %s or newer"):format(compat.MIN_VERSION), vim.log.levels.ERROR)
    return
  end
  local cfg = require("qwen-ls.config")
  local config, warnings = cfg.resolve(opts)
  for _, warning in ipairs(warnings) do
    vim.notify("qwen-ls: " .. warning, vim.log.levels.WARN)
  end
  local project = cfg.project_source()
  if project then
    -- A repository's own configuration may not choose where code goes or which program runs.
    local previous = M.config or cfg.resolve(nil)
    local ignored
    config.settings, ignored = cfg.keep_user_only(config.settings, previous.settings)
    for _, option in ipairs(cfg.USER_ONLY_OPTIONS) do
      if config[option] ~= nil and not vim.deep_equal(config[option], previous[option]) then
        table.insert(ignored, option)
      end
      config[option] = previous[option]
    end
    M.warn_ignored(project, ignored)
  end
  M.config = config

  group = api.nvim_create_augroup("qwen-ls", { clear = true })
  api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = config.filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  api.nvim_create_autocmd("LspDetach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == "qwen-ls" then
        require("qwen-ls.inline").detach(args.buf)
      end
    end,
  })
  if config.commands then
    require("qwen-ls.commands").create(M.restart)
  end
  -- Buffers already open when setup() runs (lazy loading) get the server too.
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) then
      M.attach(bufnr)
    end
  end
end

return M
