--- Integration tests: the plugin in a child Neovim against the REAL qwen-ls binary and the fixture model
--- (fixtures/models/qwen3-moe-tiny: random weights, so suggestions are gibberish, but real).
---
--- Binary: $QWEN_LS_BIN, default ../../target/debug/qwen-ls (relative to editors/nvim). When it is missing every
--- test is skipped with a loud message — unless QWEN_LS_REQUIRE_SERVER=1, which makes that a failure (for CI
--- once the server has landed).
return function(H)
  -- The timeouts below are already sized for the real server (and overridable by environment).
  H.timeout_scale = 1
  local repo = vim.fs.normalize(H.root .. "/../..")
  local bin = os.getenv("QWEN_LS_BIN")
  if not bin or bin == "" then
    bin = repo .. "/target/debug/qwen-ls"
  elseif not bin:match("^/") then
    bin = vim.fs.normalize(H.root .. "/" .. bin)
  end
  local model = os.getenv("QWEN_LS_TEST_MODEL") or (repo .. "/fixtures/models/qwen3-moe-tiny")
  local names = {
    "setup attaches the client and the server becomes ready",
    "ghost text appears after typing and the keymap accepts it (native)",
    "ghost text appears after typing and the keymap accepts it (extmark)",
    ":QwenRefactor round trip (the buffer changes, or the server says why not)",
    ":QwenExplain answers",
    ":checkhealth qwen-ls reports OK",
    ":QwenRefactor on the openai backend (scripted model server) changes the buffer to the exact expected text",
    "the server announces exactly the plugin's filetypes",
    "next/prev cycle the alternatives of an invoked completion (openai backend)",
    "files created, changed, deleted and a 100-file branch switch behind Neovim's back reach the index",
    ":QwenRefactor with codeActions.preview = false applies at once",
  }

  if vim.fn.executable(bin) ~= 1 then
    local message = ("qwen-ls binary not found at %s — build it (cargo build -p qwen-ls) or set QWEN_LS_BIN"):format(bin)
    io.stderr:write(("\n%s\n!! SKIPPING the Neovim integration tests: %s\n%s\n\n"):format(("!"):rep(100), message, ("!"):rep(100)))
    if os.getenv("QWEN_LS_REQUIRE_SERVER") == "1" then
      H.test("the qwen-ls binary exists", function()
        error(message .. " (QWEN_LS_REQUIRE_SERVER=1)", 0)
      end)
    else
      for _, name in ipairs(names) do
        H.skip(name, "no qwen-ls binary")
      end
    end
    return
  end

  -- A private copy of the workspace, with a root marker.
  local tmp = H.tempdir()
  local workspace = tmp .. "/workspace"
  vim.fn.system({ "cp", "-r", H.root .. "/../testdata/workspace", workspace })
  vim.fn.mkdir(workspace .. "/.git", "p")
  local log_file = tmp .. "/qwen-ls.log"

  local READY_MS = tonumber(os.getenv("QWEN_LS_READY_TIMEOUT_MS") or "") or 180000
  local GEN_MS = tonumber(os.getenv("QWEN_LS_GENERATE_TIMEOUT_MS") or "") or 60000

  --- Dumps the server's log and Neovim's LSP log when a test fails, so CI output says why.
  local function diagnose(child, err)
    local parts = { tostring(err) }
    if vim.fn.filereadable(log_file) == 1 then
      local lines = vim.fn.readfile(log_file)
      table.insert(parts, "--- server log (last 40 lines) ---\n" .. table.concat(vim.list_slice(lines, math.max(1, #lines - 39)), "\n"))
    end
    if child then
      local ok, lsp_log = pcall(child.lua, child, "return vim.lsp.get_log_path()")
      if ok and vim.fn.filereadable(lsp_log) == 1 then
        local lines = vim.fn.readfile(lsp_log)
        table.insert(parts, "--- nvim lsp.log (last 20 lines) ---\n" .. table.concat(vim.list_slice(lines, math.max(1, #lines - 19)), "\n"))
      end
      pcall(function()
        table.insert(parts, "--- :messages ---\n" .. child:messages())
      end)
    end
    error(table.concat(parts, "\n"), 0)
  end

  --- A child with the plugin on the real server, `file` open, the server ready.
  --- `remote`: settings for the openai backend instead of the fixture model.
  local function start(mode, file, remote, ws)
    local child = H.child({ cwd = ws or workspace })
    local ok, err = pcall(function()
      child:lua(
        [[
        local bin, model, log_file, mode, remote = ...
        vim.lsp.set_log_level("info")
        local settings = {
          model = model,
          logFile = log_file,
          completion = { maxTokens = 12, debounceMs = 0 },
          hover = { maxTokens = 24 },
          codeActions = { maxTokens = 64 },
        }
        if remote then
          settings = vim.tbl_deep_extend("force", settings, remote)
        end
        require("qwen-ls").setup({
          path = bin,
          ghost_text = { mode = mode },
          settings = settings,
        })
      ]],
        bin,
        model,
        log_file,
        mode,
        remote or false
      )
      child:cmd("edit " .. file)
      child:wait("local c = vim.lsp.get_clients({ name = 'qwen-ls', bufnr = 0 })[1]; return c and c.initialized", 20000, "the client to attach")
      child:wait(
        [[
        local client = vim.lsp.get_clients({ name = "qwen-ls" })[1]
        local result = require("qwen-ls.compat").request_sync(client, "workspace/executeCommand", { command = "qwen-ls.status", arguments = {} }, 2000)
        if result and result.state == "error" then error("server error: " .. tostring(result.message)) end
        return result and result.state == "ready"
      ]],
        READY_MS,
        "the server to report ready"
      )
    end)
    if not ok then
      diagnose(child, err)
    end
    return child
  end

  --- Wraps a test body so that a failure carries the logs.
  local function with_child(mode, file, body, remote, ws)
    return function()
      local child = start(mode, file, remote, ws)
      local ok, err = xpcall(body, debug.traceback, child)
      if not ok then
        -- With the child's LSP log and messages, while it still runs.
        local _, report = pcall(diagnose, child, err)
        child:stop()
        error(report, 0)
      end
      child:stop()
    end
  end

  H.test(names[1], with_child("auto", "src/lib.rs", function(child)
    H.eq(1, child:lua("return #vim.lsp.get_clients({ name = 'qwen-ls', bufnr = 0 })"))
    H.eq("qwen-ls", child:lua("return require('qwen-ls').statusline()"))
  end))

  --- Types at a few spots until the server shows a suggestion (a random-weight model may answer nothing at
  --- one spot), then accepts it with <Tab> and checks the buffer got it.
  local function ghost_test(mode)
    return with_child(mode, "src/lib.rs", function(child)
      local native = mode == "native"
      if native and not child:lua("return vim.lsp.inline_completion ~= nil") then
        H.skip("native ghost text", "this Neovim has no vim.lsp.inline_completion")
        return
      end
      local shown_code = native
          and [[local ns = vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion']
                local m = ns and vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true }) or {}
                local d = m[1] and m[1][4]
                if not d then return nil end
                local parts = { d.virt_text and d.virt_text[1][1] or "" }
                for _, l in ipairs(d.virt_lines or {}) do table.insert(parts, l[1][1]) end
                local s = table.concat(parts, "\n")
                return s ~= "" and s or nil]]
        or "return require('qwen-ls.ghost').shown_text(0)"
      -- Spots: inside fibonacci's empty body, after `let mut sum = `, at the end of the file.
      local attempts = {
        { row = 18, keys = "i    if n < 2 {" },
        { row = 10, keys = "A // " },
        { row = 20, keys = "o<CR>pub fn mul(a: i64, b: i64) -> i64 {<CR>" },
      }
      local shown
      for _, attempt in ipairs(attempts) do
        child:input("<Esc>")
        child:lua("vim.api.nvim_win_set_cursor(0, { ..., 0 })", attempt.row)
        child:input(attempt.keys)
        local ok, value = pcall(child.wait, child, shown_code, GEN_MS, "ghost text")
        if ok then
          shown = value
          break
        end
      end
      H.truthy(shown, "no ghost text at any of the spots")
      local before = child:lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
      local first_line = vim.split(shown, "\n", { plain = true })[1]
      child:input("<Tab>")
      local after = child:wait(
        "local t = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n'); return t ~= ... and t",
        5000,
        "the suggestion to be inserted",
        before
      )
      H.truthy(after:find(first_line, 1, true), ("accepted text %q not in the buffer"):format(first_line))
    end)
  end

  H.test(names[2], ghost_test("native"))
  H.test(names[3], ghost_test("extmark"))

  -- The fixture model has random weights (and a 256-token context window): its answer is never a valid edit.
  -- What this proves against the real server is the round trip: the command reaches the server with the
  -- linewise range, and the server's outcome reaches the user — the edited buffer (workspace/applyEdit) or
  -- the server's reason in a "not applied" note. The edit landing in the buffer is covered with a scripted
  -- server in the unit suite and with a scripted model in the server's own tests.
  H.test(names[4], with_child("auto", "src/lib.rs", function(child)
    local before = child:lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
    -- The body of `total` (lines 10-15), linewise.
    child:lua([[
      _G.qwen_test_notes = {}
      local notify = vim.notify
      vim.notify = function(msg, level, o) table.insert(_G.qwen_test_notes, msg); return notify(msg, level, o) end
    ]])
    child:cmd("10,15QwenRefactor use an iterator sum instead of the loop")
    local outcome = child:wait(
      [[
      local t = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
      if t ~= ... then return "changed" end
      for _, note in ipairs(_G.qwen_test_notes) do
        if note:find("refactor not applied: ", 1, true) then return note end
        if note:find("failed") then error(note) end
      end
    ]],
      GEN_MS * 2,
      "the refactor to change the buffer or the server to say why not",
      before
    )
    if outcome ~= "changed" then
      -- A reason from the server, not an empty or client-side message.
      H.truthy(#outcome > #"qwen-ls: refactor not applied: ", "empty reason: " .. outcome)
    end
  end))

  H.test(names[5], with_child("auto", "src/lib.rs", function(child)
    child:lua("vim.api.nvim_win_set_cursor(0, { 5, 4 })")
    local result = child:lua([[
      local client = vim.lsp.get_clients({ name = "qwen-ls" })[1]
      local args = { { uri = vim.uri_from_bufnr(0), position = { line = 4, character = 4 } } }
      local result, err = require("qwen-ls.compat").request_sync(client, "workspace/executeCommand", { command = "qwen-ls.explain", arguments = args }, ...)
      if err then error(err) end
      return result
    ]], GEN_MS)
    H.truthy(result == vim.NIL or (type(result) == "table" and type(result.markdown) == "string"), "explain result shape: " .. vim.inspect(result))
  end))

  H.test(names[6], with_child("auto", "src/lib.rs", function(child)
    child:cmd("checkhealth qwen-ls")
    local text = table.concat(child:lines(), "\n")
    H.matches("OK binary: ", text)
    H.matches("OK version: ", text)
    H.matches("OK model: .*%(ready%)", text)
    H.matches("OK index: %d+ files", text)
    H.truthy(not text:find("ERROR"), "ERROR in :checkhealth qwen-ls:\n" .. text)
  end))
  -- The same command on the openai backend (real product code) against editors/testdata/fake_openai.py, a
  -- scripted model server that always answers one SEARCH/REPLACE edit of `total`: the edit must reach the
  -- buffer through workspace/applyEdit, giving exactly editors/testdata/expected/lib.rs. editors/test.sh
  -- starts the fake server and passes its endpoint in QWEN_LS_TEST_OPENAI_ENDPOINT.
  local endpoint = os.getenv("QWEN_LS_TEST_OPENAI_ENDPOINT") or ""
  if endpoint == "" then
    if os.getenv("QWEN_LS_REQUIRE_SERVER") == "1" then
      H.test(names[7], function()
        error("QWEN_LS_TEST_OPENAI_ENDPOINT is not set (editors/test.sh starts editors/testdata/fake_openai.py)", 0)
      end)
    else
      io.stderr:write("\n!! SKIPPING " .. names[7] .. ": QWEN_LS_TEST_OPENAI_ENDPOINT is not set (run editors/test.sh)\n")
      H.skip(names[7], "no fake model server")
    end
  else
    local expected = table.concat(vim.fn.readfile(H.root .. "/../testdata/expected/lib.rs"), "\n")
    --- :QwenRefactor on total's body; returns the buffer text before and a function that waits for a change.
    local function refactor(child)
      child:lua([[
        _G.qwen_test_notes = {}
        local notify = vim.notify
        vim.notify = function(msg, level, o) table.insert(_G.qwen_test_notes, msg); return notify(msg, level, o) end
      ]])
      local before = child:lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
      H.truthy(before ~= expected, "the workspace already holds the expected text")
      child:cmd("10,15QwenRefactor use an iterator sum instead of the loop")
      return before
    end
    local changed_code = [[
      local t = table.concat(vim.api.nvim_buf_get_lines(..., 0, -1, false), '\n')
      if t ~= select(2, ...) then return t end
      for _, note in ipairs(_G.qwen_test_notes) do
        if note:find("not applied", 1, true) or note:find("failed") then error(note) end
      end
    ]]
    H.test(names[7], with_child("auto", "src/lib.rs", function(child)
      local source = child:lua("return vim.api.nvim_get_current_buf()")
      local before = refactor(child)
      -- The edit asks for review: its diff opens in a scratch buffer and the file is untouched until `a`.
      local diff = child:wait([[
        local b = require("qwen-ls.review").bufnr
        return b and vim.api.nvim_buf_is_valid(b) and table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), "\n")
      ]], GEN_MS, "the review buffer")
      H.matches("%+%+%+ b/src/lib.rs", diff)
      H.matches("\n%+    values%.iter%(%)%.sum%(%)", diff)
      H.matches("\n%-    let mut sum = 0;", diff)
      H.eq(before, child:lua("return table.concat(vim.api.nvim_buf_get_lines(..., 0, -1, false), '\\n')", source))
      H.eq("diff", child:lua("return vim.bo.filetype"))
      child:input("a")
      local after = child:wait(changed_code, GEN_MS, "the refactor to change the buffer", source, before)
      H.eq(expected, after)
      H.eq(true, child:lua("return vim.bo[...].modified", source))
    end, { backend = "openai", openai = { endpoint = endpoint } }))
    H.test(names[11], with_child("auto", "src/lib.rs", function(child)
      local source = child:lua("return vim.api.nvim_get_current_buf()")
      local before = refactor(child)
      H.eq(expected, child:wait(changed_code, GEN_MS, "the refactor to change the buffer", source, before))
      H.eq(true, child:lua("return require('qwen-ls.review').bufnr == nil"), "no review buffer")
    end, { backend = "openai", openai = { endpoint = endpoint }, codeActions = { preview = false } }))
  end

  H.test(names[8], with_child("auto", "src/lib.rs", function(child)
    local announced = child:lua([[
      local client = vim.lsp.get_clients({ name = "qwen-ls" })[1]
      return require("qwen-ls.client").served_languages(client)
    ]])
    H.eq(require("qwen-ls.config").FILETYPES, announced)
  end))

  if endpoint == "" then
    H.skip(names[9], "no fake model server")
  else
    -- fake_openai.py answers a sampled request by its seed: seed 1 repeats the greedy answer (dropped as a
    -- duplicate), seeds 2 and 3 differ, so the invoked completion has exactly three suggestions.
    local expected = {
      "if n < 2 {\n        return n;\n    }",
      "match n {\n        0 | 1 => n,\n        _ => fibonacci(n - 1) + fibonacci(n - 2),\n    }",
      "(0..n).fold((0, 1), |(a, b), _| (b, a + b)).0",
    }
    H.test(names[9], with_child("extmark", "src/lib.rs", function(child)
      child:input("<Esc>")
      child:lua("vim.api.nvim_win_set_cursor(0, { 19, 0 })")
      child:input("i")
      local shown_code = "local t = require('qwen-ls.ghost').shown_text(0); return t and vim.trim(t) ~= '' and vim.trim(t)"
      local seen, order = {}, {}
      local deadline = vim.uv.now() + GEN_MS
      while #order < 3 and vim.uv.now() < deadline do
        child:input("<M-]>")
        local ok, text = pcall(child.wait, child, shown_code, 5000, "a suggestion after <M-]>")
        if ok and not seen[text] then
          seen[text] = true
          table.insert(order, text)
        end
      end
      table.sort(order)
      local want = vim.deepcopy(expected)
      table.sort(want)
      H.eq(want, order)
      -- Cycling on wraps around, and <M-[> goes back. Keys reach the child asynchronously (nvim_input queues
      -- them), so each step waits for the suggestion shown to change, rather than reading it once.
      local before = child:wait(shown_code, 5000, "a suggestion")
      local shown = "local t = require('qwen-ls.ghost').shown_text(0); t = t and vim.trim(t); "
      local shown_is = shown .. "return t ~= nil and t == ..."
      local shown_is_not = shown .. "return t ~= nil and t ~= '' and t ~= ..."
      child:input("<M-]>")
      child:wait(shown_is_not, 5000, "another suggestion after <M-]>", before)
      child:input("<M-[>")
      child:wait(shown_is, 5000, "the same suggestion again after <M-[>", before)
    end, { backend = "openai", openai = { endpoint = endpoint } }))
  end

  -- A workspace of its own: files appear, change and vanish under it while Neovim watches.
  local watched = tmp .. "/watched"
  vim.fn.system({ "cp", "-r", H.root .. "/../testdata/workspace", watched })
  vim.fn.mkdir(watched .. "/.git", "p")
  local remote_settings = endpoint ~= "" and { backend = "openai", openai = { endpoint = endpoint } } or nil
  H.test(names[10], with_child("auto", "src/lib.rs", function(child)
    local function check(files, what)
      local last
      local ok = pcall(child.wait, child, [[
        local client = vim.lsp.get_clients({ name = "qwen-ls" })[1]
        local r = require("qwen-ls.compat").request_sync(client, "workspace/executeCommand",
          { command = "qwen-ls.debug.verifyIndex", arguments = {} }, 5000)
        _G.qwen_last_check = r
        return r and r.equal and r.files == ... and r
      ]], 20000, what, files)
      if not ok then
        last = child:lua("return _G.qwen_last_check")
        error(("%s: expected %d files and an index equal to a re-index, last check: %s"):format(what, files, vim.inspect(last)), 0)
      end
    end
    child:wait([[
      local client = vim.lsp.get_clients({ name = "qwen-ls" })[1]
      local all = client.registrations or (client.dynamic_capabilities or {}).capabilities or {}
      local regs = all["workspace/didChangeWatchedFiles"]
      return regs ~= nil and #regs > 0
    ]], 10000, "the server's watcher registration")
    check(2, "the first index")
    local function write(path, text)
      vim.fn.mkdir(vim.fs.dirname(watched .. "/" .. path), "p")
      vim.fn.writefile(vim.split(text, "\n"), watched .. "/" .. path)
    end
    write("src/created.rs", "pub fn created() {}")
    check(3, "a created file")
    write("src/created.rs", "pub fn created() {}\npub fn changed() {}")
    check(3, "a changed file")
    vim.fn.delete(watched .. "/src/created.rs")
    check(2, "a deleted file")
    -- "main": 100 modules; the switch deletes 40, changes 60 and adds 100 in a new directory.
    for i = 0, 99 do
      write(("gen/m%d.rs"):format(i), ("pub fn function_%d() -> u32 { 1 }"):format(i))
    end
    check(102, "100 files of one branch")
    for i = 0, 99 do
      if i < 40 then
        vim.fn.delete(watched .. ("/gen/m%d.rs"):format(i))
      else
        write(("gen/m%d.rs"):format(i), ("pub fn function_%d() -> u32 { 2 + 2 }"):format(i))
      end
      write(("feature/f%d.rs"):format(i), ("pub fn feature_%d() {}"):format(i))
    end
    check(162, "the branch switch")
    write(".gitignore", "feature/")
    check(62, "feature/ ignored by a new .gitignore")
  end, remote_settings, watched))
end
