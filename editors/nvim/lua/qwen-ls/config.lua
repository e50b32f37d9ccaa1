--- Options of `require("qwen-ls").setup()`: defaults, validation and merging. Pure: no side effects, so that
--- tests can check every rule without starting anything.
local compat = require("qwen-ls.compat")

local M = {}

--- Server configuration keys of docs/PROTOCOL.md (dotted). `settings` may use them nested or dotted.
M.SERVER_KEYS = {
  "model",
  "dtype",
  "backend",
  "openai.endpoint",
  "openai.model",
  "openai.apiKeyEnv",
  "threads.prefill",
  "threads.decode",
  "draftModel",
  "completion.enabled",
  "completion.model",
  "completion.speculative",
  "completion.budget",
  "completion.maxTokens",
  "completion.temperature",
  "completion.debounceMs",
  "completion.latencyMs",
  "completion.suffixTokens",
  "hover.enabled",
  "hover.budget",
  "hover.maxTokens",
  "hover.speculative",
  "codeActions.enabled",
  "codeActions.budget",
  "codeActions.maxTokens",
  "codeActions.speculative",
  "codeActions.checkCommand",
  "codeActions.maxRounds",
  "codeActions.checkTimeout",
  "codeActions.fixTimeLimit",
  "codeActions.preview",
  "debug.dumpPrompt",
  "logFile",
}

--- Settings that choose where code is sent (`backend`, `openai.*`), which commands run
--- (`codeActions.checkCommand`) or where files are written (`logFile`): honoured only from the user's own
--- configuration, never from a project-local file a repository can ship.
M.USER_ONLY_SETTINGS = {
  "backend",
  "openai.endpoint",
  "openai.model",
  "openai.apiKeyEnv",
  "logFile",
  "codeActions.checkCommand",
}
--- Options that choose the program that runs: the same rule.
M.USER_ONLY_OPTIONS = { "cmd", "path" }
--- Neovim's project-local configuration files ('exrc'): workspace-level configuration.
M.PROJECT_FILES = { ".nvim.lua", ".nvimrc", ".exrc" }

--- The project-local configuration file ('exrc') the current call comes from, if any: looked for on the Lua call
--- stack and on Vim script's `<stack>` (a `.nvimrc` that runs `:lua`).
---@return string?
function M.project_source()
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then
      break
    end
    if info.source:sub(1, 1) == "@" then
      local file = info.source:sub(2)
      if vim.tbl_contains(M.PROJECT_FILES, vim.fs.basename(file)) then
        return file
      end
    end
    level = level + 1
  end
  local ok, stack = pcall(vim.fn.expand, "<stack>")
  if ok and type(stack) == "string" then
    for _, name in ipairs(M.PROJECT_FILES) do
      if stack:find("/" .. name .. "[", 1, true) then
        return name
      end
    end
  end
  return nil
end

local function get_dotted(tbl, key)
  local node = tbl
  for _, part in ipairs(vim.split(key, ".", { plain = true })) do
    if type(node) ~= "table" then
      return nil
    end
    node = node[part]
  end
  return node
end

local function set_dotted(tbl, key, value)
  local parts = vim.split(key, ".", { plain = true })
  local node = tbl
  for i = 1, #parts - 1 do
    if type(node[parts[i]]) ~= "table" then
      if value == nil then
        return
      end
      node[parts[i]] = {}
    end
    node = node[parts[i]]
  end
  node[parts[#parts]] = value
end

--- `settings` (nested) with every user-only key taken from `trusted` (the user's own settings, or nil) instead;
--- and the keys whose value `settings` tried to change.
---@return table settings, string[] overridden
function M.keep_user_only(settings, trusted)
  local result = vim.deepcopy(settings)
  local overridden = {}
  for _, key in ipairs(M.USER_ONLY_SETTINGS) do
    local wanted = get_dotted(result, key)
    local kept = trusted and get_dotted(trusted, key) or nil
    if wanted ~= nil and not vim.deep_equal(wanted, kept) then
      table.insert(overridden, key)
    end
    set_dotted(result, key, vim.deepcopy(kept))
  end
  return result, overridden
end

--- Filetypes the server has tree-sitter grammars for: the LSP language ids a server of this version announces
--- at initialize (`capabilities.experimental.qwenLs.languageIds`, PROTOCOL.md). A server that announces a
--- different list wins: buffers of other filetypes are detached (client.lua).
M.FILETYPES = {
  "rust",
  "python",
  "javascript",
  "javascriptreact",
  "typescript",
  "typescriptreact",
  "go",
  "java",
}

M.defaults = {
  -- Command that starts the server. nil: { <path>, "serve" }. A function is passed to vim.lsp.start as is
  -- (e.g. vim.lsp.rpc.connect("127.0.0.1", 9257) for a server started elsewhere).
  cmd = nil,
  -- Binary. nil: `qwen-ls` on $PATH.
  path = nil,
  filetypes = M.FILETYPES,
  -- Files or directories marking the workspace root; the first ancestor holding one wins, else the file's dir.
  root_markers = { ".git", "Cargo.toml", "package.json", "pyproject.toml", "go.mod", "setup.py" },
  -- PROTOCOL.md configuration, sent as initializationOptions and on every `update_settings()`.
  settings = {},
  ghost_text = {
    enabled = true,
    -- "auto": Neovim's own vim.lsp.inline_completion where it exists (0.12+), else "extmark".
    mode = "auto",
    -- Client-side debounce of the extmark implementation (the server debounces too; this only coalesces
    -- bursts of events into one request).
    debounce_ms = 30,
    hl_group = "Comment",
  },
  -- Insert-mode keys; set one to false to leave that key alone.
  keymaps = {
    accept = "<Tab>",
    accept_word = "<M-Right>",
    next = "<M-]>",
    prev = "<M-[>",
    dismiss = "<C-]>",
  },
  -- Create :QwenRefactor, :QwenRefactorWorkspace, :QwenExplain, :QwenStatus, :QwenRestart.
  commands = true,
  -- Let the server ask Neovim to watch the workspace's source and ignore files (workspace/didChangeWatchedFiles),
  -- so a `git checkout` or a generator outside the editor reaches the index. Neovim announces this only on
  -- macOS and Windows by default; on Linux it uses inotifywait when installed (inotify-tools), else a
  -- per-directory watcher.
  watch_files = true,
  -- Called as on_attach(client, bufnr) after the plugin's own attach work.
  on_attach = nil,
}

local KEYMAP_NAMES = { "accept", "accept_word", "next", "prev", "dismiss" }

local function is_list_of_strings(value)
  if type(value) ~= "table" then
    return false
  end
  for _, v in pairs(value) do
    if type(v) ~= "string" then
      return false
    end
  end
  return vim.tbl_count(value) == #value
end

--- `settings` with dotted keys expanded ({["completion.maxTokens"] = 8} → {completion = {maxTokens = 8}}).
---@param settings table
---@return table
function M.expand_dotted(settings)
  local result = {}
  for key, value in pairs(settings) do
    local parts = vim.split(key, ".", { plain = true })
    local node = result
    for i = 1, #parts - 1 do
      if type(node[parts[i]]) ~= "table" then
        node[parts[i]] = {}
      end
      node = node[parts[i]]
    end
    local last = parts[#parts]
    if type(value) == "table" and type(node[last]) == "table" then
      node[last] = vim.tbl_deep_extend("force", node[last], M.expand_dotted(value))
    elseif type(value) == "table" then
      node[last] = M.expand_dotted(value)
    else
      node[last] = value
    end
  end
  return result
end

--- Dotted keys of a nested table ({completion = {maxTokens = 8}} → {"completion.maxTokens"}), sorted.
function M.flatten_keys(tbl, prefix, out)
  out = out or {}
  for key, value in pairs(tbl) do
    local name = prefix and (prefix .. "." .. key) or key
    if type(value) == "table" and not vim.islist(value) and next(value) ~= nil then
      M.flatten_keys(value, name, out)
    else
      table.insert(out, name)
    end
  end
  table.sort(out)
  return out
end

--- Keys of `settings` that PROTOCOL.md does not define (the server would ignore them).
function M.unknown_settings(settings)
  local known = {}
  for _, key in ipairs(M.SERVER_KEYS) do
    known[key] = true
  end
  local unknown = {}
  for _, key in ipairs(M.flatten_keys(settings)) do
    if not known[key] then
      table.insert(unknown, key)
    end
  end
  return unknown
end

--- Validates user options; raises a message naming the bad option.
function M.validate(opts)
  compat.validate("opts", opts, "table")
  compat.validate("cmd", opts.cmd, function(v)
    return v == nil or type(v) == "function" or is_list_of_strings(v) and #v > 0
  end, "list of strings, or a function as vim.lsp.start accepts (e.g. vim.lsp.rpc.connect(host, port))")
  compat.validate("path", opts.path, "string", true)
  compat.validate("filetypes", opts.filetypes, is_list_of_strings, "list of strings")
  compat.validate("root_markers", opts.root_markers, is_list_of_strings, "list of strings")
  compat.validate("settings", opts.settings, "table")
  compat.validate("ghost_text", opts.ghost_text, "table")
  compat.validate("ghost_text.enabled", opts.ghost_text.enabled, "boolean")
  compat.validate("ghost_text.mode", opts.ghost_text.mode, function(v)
    return v == "auto" or v == "native" or v == "extmark"
  end, '"auto", "native" or "extmark"')
  compat.validate("ghost_text.debounce_ms", opts.ghost_text.debounce_ms, "number")
  compat.validate("ghost_text.hl_group", opts.ghost_text.hl_group, "string")
  compat.validate("keymaps", opts.keymaps, "table")
  for _, name in ipairs(KEYMAP_NAMES) do
    compat.validate("keymaps." .. name, opts.keymaps[name], function(v)
      return v == false or type(v) == "string"
    end, "a key (string) or false")
  end
  for name in pairs(opts.keymaps) do
    if not vim.tbl_contains(KEYMAP_NAMES, name) then
      error(("keymaps.%s: unknown keymap (known: %s)"):format(name, table.concat(KEYMAP_NAMES, ", ")), 0)
    end
  end
  compat.validate("commands", opts.commands, "boolean")
  compat.validate("watch_files", opts.watch_files, "boolean")
  compat.validate("on_attach", opts.on_attach, "function", true)
end

--- Defaults ⊕ user options, validated. Lists (filetypes, root_markers, cmd) replace rather than merge.
---@param user table?
---@return table config, string[] warnings
function M.resolve(user)
  user = user or {}
  compat.validate("opts", user, "table")
  local merged = vim.deepcopy(M.defaults)
  for key, value in pairs(user) do
    if M.defaults[key] == nil and key ~= "cmd" and key ~= "path" and key ~= "on_attach" then
      error(("unknown option %q"):format(key), 0)
    end
    if (key == "ghost_text" or key == "keymaps") and type(value) == "table" then
      merged[key] = vim.tbl_extend("force", merged[key], value)
    elseif key == "settings" and type(value) == "table" then
      merged.settings = M.expand_dotted(value)
    else
      merged[key] = value
    end
  end
  M.validate(merged)
  local warnings = {}
  for _, key in ipairs(M.unknown_settings(merged.settings)) do
    table.insert(warnings, ("settings.%s is not a qwen-ls setting (see :help qwen-ls-settings); ignored by the server"):format(key))
  end
  return merged, warnings
end

--- The binary :checkhealth looks at: `path`, else the first word of `cmd`, else "qwen-ls".
function M.binary(config)
  if config.path then
    return config.path
  end
  if type(config.cmd) == "table" then
    return config.cmd[1]
  end
  return "qwen-ls"
end

--- The command to start the server.
function M.cmd(config)
  if config.cmd then
    return config.cmd
  end
  return { config.path or "qwen-ls", "serve" }
end

--- Which ghost-text implementation to use: "native", "extmark" or nil (off).
---@param ghost table the ghost_text options
---@param has_native boolean whether vim.lsp.inline_completion exists
function M.ghost_mode(ghost, has_native)
  if not ghost.enabled then
    return nil
  end
  if ghost.mode == "native" then
    return has_native and "native" or "extmark"
  end
  if ghost.mode == "extmark" then
    return "extmark"
  end
  return has_native and "native" or "extmark"
end

return M
