--- A small test harness for `nvim -l` (no plenary: nothing outside the package registries can be installed).
--- Prints one line per test and closes with "N passed, N failed, N skipped"; exits non-zero on failure.
local H = {}

local counts = { passed = 0, failed = 0, skipped = 0 }
local only = os.getenv("QWEN_TEST_FILTER")

--- The plugin's root folder (editors/nvim).
H.root = vim.fs.dirname(vim.fs.dirname(vim.fs.normalize(debug.getinfo(1, "S").source:sub(2))))
if not H.root:match("^/") then
  H.root = vim.fn.fnamemodify(H.root, ":p"):gsub("/$", "")
end

function H.test(name, fn)
  if only and not name:find(only, 1, true) then
    return
  end
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    counts.passed = counts.passed + 1
    io.stdout:write("ok   - " .. name .. "\n")
  else
    counts.failed = counts.failed + 1
    io.stdout:write("FAIL - " .. name .. "\n" .. tostring(err):gsub("^", "       ") .. "\n")
  end
  io.stdout:flush()
end

function H.skip(name, reason)
  counts.skipped = counts.skipped + 1
  io.stdout:write(("skip - %s (%s)\n"):format(name, reason))
end

function H.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(("%sexpected %s, got %s"):format(what and (what .. ": ") or "", vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

function H.truthy(value, what)
  if not value then
    error((what or "expected a true value") .. ", got " .. vim.inspect(value), 2)
  end
  return value
end

function H.matches(pattern, text, what)
  if type(text) ~= "string" or not text:find(pattern) then
    error(("%sexpected %q to match %q"):format(what and (what .. ": ") or "", tostring(text), pattern), 2)
  end
end

function H.raises(fn, pattern)
  local ok, err = pcall(fn)
  if ok then
    error("expected an error matching " .. pattern, 2)
  end
  H.matches(pattern, tostring(err), "error")
end

--- Closing line and exit code.
function H.finish()
  io.stdout:write(("%d passed, %d failed, %d skipped\n"):format(counts.passed, counts.failed, counts.skipped))
  io.stdout:flush()
  os.exit(counts.failed == 0 and 0 or 1)
end

--- A temporary directory, removed at exit.
function H.tempdir()
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, "p")
  return dir
end

---------------------------------------------------------------------------------------------------------------
-- A child Neovim driven over RPC, so that keys are typed for real (insert mode, autocmds, timers) while this
-- process asserts. The child is the same binary, started clean with only this plugin on its runtimepath.
---------------------------------------------------------------------------------------------------------------
local Child = {}
Child.__index = Child

---@param opts { env?: table, cwd?: string }?
function H.child(opts)
  opts = opts or {}
  local state = H.tempdir()
  local env = vim.tbl_extend("force", {
    XDG_STATE_HOME = state .. "/state",
    XDG_DATA_HOME = state .. "/data",
    XDG_CONFIG_HOME = state .. "/config",
    XDG_CACHE_HOME = state .. "/cache",
  }, opts.env or {})
  local argv = {
    vim.v.progpath,
    "--embed",
    "--headless",
    "--clean",
    "-n",
    "-i",
    "NONE",
    "--cmd",
    "set rtp^=" .. vim.fn.fnameescape(H.root) .. " columns=120 lines=40",
  }
  local chan = vim.fn.jobstart(argv, { rpc = true, env = env, cwd = opts.cwd })
  if chan <= 0 then
    error("cannot start " .. vim.v.progpath)
  end
  local child = setmetatable({ chan = chan }, Child)
  -- The child's own package.path can find tests/*.lua (the fake server).
  child:lua("package.path = ... .. '/tests/?.lua;' .. package.path", H.root)
  return child
end

--- Runs Lua `code` in the child with `...` as arguments; returns its result.
function Child:lua(code, ...)
  return vim.rpcrequest(self.chan, "nvim_exec_lua", code, { ... })
end

--- Types keys (as a user would; `<Esc>`, `<Tab>` notation).
function Child:input(keys)
  vim.rpcrequest(self.chan, "nvim_input", keys)
end

--- Runs an Ex command.
function Child:cmd(command)
  return vim.rpcrequest(self.chan, "nvim_command", command)
end

-- CI shares two cores with cargo: waits are stretched by QWEN_TEST_TIMEOUT_SCALE (default 3). A passing wait
-- returns as soon as its condition holds, so this only lengthens failures.
H.timeout_scale = tonumber(os.getenv("QWEN_TEST_TIMEOUT_SCALE") or "") or 3

--- Waits until Lua `code` returns a truthy value in the child; returns that value, or errors with `what`.
function Child:wait(code, timeout_ms, what, ...)
  local args = { ... }
  local value
  timeout_ms = math.floor((timeout_ms or 5000) * H.timeout_scale)
  local ok = vim.wait(timeout_ms, function()
    value = self:lua(code, unpack(args))
    return value ~= nil and value ~= false and value ~= vim.NIL
  end, 20)
  if not ok then
    error(("timed out after %d ms waiting for %s"):format(timeout_ms, what or code), 2)
  end
  return value
end

function Child:lines(bufnr)
  return self:lua("return vim.api.nvim_buf_get_lines(..., 0, -1, false)", bufnr or 0)
end

--- Messages the child printed or notified (its :messages).
function Child:messages()
  return vim.rpcrequest(self.chan, "nvim_exec2", "messages", { output = true }).output
end

function Child:stop()
  pcall(vim.rpcrequest, self.chan, "nvim_command", "qa!")
  vim.fn.jobstop(self.chan)
end

return H
