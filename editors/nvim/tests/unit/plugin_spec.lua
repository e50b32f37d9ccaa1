--- Unit tests of the plugin in a real (child) Neovim against the in-process fake server: keys are typed for
--- real, so insert mode, autocmds, timers and extmarks all run.
return function(H)
  local workspace = H.tempdir()
  vim.fn.mkdir(workspace .. "/.git", "p")
  vim.fn.writefile({ "def add(a, b):", "    return a + b", "", "" }, workspace .. "/main.py")
  vim.fn.writefile({ "notes" }, workspace .. "/notes.txt")
  local fake_bin = workspace .. "/bin/qwen-ls"
  vim.fn.mkdir(workspace .. "/bin", "p")
  vim.fn.writefile({ "#!/bin/sh", 'echo "qwen-ls 0.0.0-fake"' }, fake_bin)
  vim.fn.setfperm(fake_bin, "rwxr-xr-x")

  --- A child with the plugin set up on the fake server and main.py open, cursor on the empty line 3.
  local function start(mode, opts)
    local child = H.child({ cwd = workspace })
    -- Record any global the plugin's own code creates (it must create none; Neovim's runtime sets a few, e.g.
    -- `re`, which are not ours); checked by done().
    child:lua([[
      local root = ...
      local created = {}
      rawset(_G, "__qwen_new_globals", created)
      setmetatable(_G, { __newindex = function(t, k, v)
        local source = debug.getinfo(2, "S").source
        if source:find(root, 1, true) and not source:find("/tests/", 1, true) then
          table.insert(created, k .. " (" .. source .. ")")
        end
        rawset(t, k, v)
      end })
    ]], H.root)
    child:lua(
      [[
      local mode, opts, bin = ...
      local fake = require("fake_server")
      fake.default_completion = function(params)
        return { { insertText = "print('hi')", range = { start = params.position, ["end"] = params.position },
                   command = { title = "accepted", command = "qwen-ls.completionAccepted", arguments = { { id = "c1" } } } } }
      end
      opts = vim.tbl_deep_extend("force", { cmd = fake.cmd, path = bin, ghost_text = { mode = mode } }, opts or {})
      require("qwen-ls").setup(opts)
    ]],
      mode,
      opts or vim.empty_dict(),
      fake_bin
    )
    child:cmd("edit main.py")
    child:wait("local c = vim.lsp.get_clients({ name = 'qwen-ls', bufnr = 0 })[1]; return c and c.initialized", 5000, "the client to attach")
    child:lua("vim.api.nvim_win_set_cursor(0, {3, 0})")
    return child
  end

  --- Stops a child after checking that nothing created a global.
  local function done(child)
    local globals = child:lua("return rawget(_G, '__qwen_new_globals') or {}")
    child:stop()
    H.eq({}, globals, "globals created by the plugin")
  end

  local function fake(child, expr)
    return child:lua("local fake = require('fake_server'); return " .. expr)
  end

  local shown_extmark = "return require('qwen-ls.ghost').shown_text(0)"

  H.test("setup attaches to configured filetypes only, with settings as initializationOptions", function()
    local child = start("extmark", { settings = { model = "/models/tiny", ["completion.maxTokens"] = 8 } })
    local init = fake(child, "fake.requests('initialize')[1].initializationOptions")
    H.eq({ model = "/models/tiny", completion = { maxTokens = 8 } }, init)
    local didchange = fake(child, "fake.requests('workspace/didChangeConfiguration')[1]")
    H.eq({ settings = { ["qwen-ls"] = { model = "/models/tiny", completion = { maxTokens = 8 } } } }, didchange)
    local caps = fake(child, "fake.requests('initialize')[1].capabilities.textDocument.inlineCompletion")
    H.truthy(type(caps) == "table", "inlineCompletion client capability announced")
    child:cmd("edit notes.txt")
    H.eq(0, child:lua("return #vim.lsp.get_clients({ name = 'qwen-ls', bufnr = 0 })"), "not attached to text")
    done(child)
  end)

  H.test("empty settings go out as a JSON object", function()
    local child = start("extmark")
    H.eq("table", child:lua("return type(require('fake_server').requests('initialize')[1].initializationOptions)"))
    H.eq(true, child:lua("return vim.json.encode(require('fake_server').requests('initialize')[1].initializationOptions) == '{}'"))
    done(child)
  end)

  H.test("extmark: ghost text appears after typing; <Tab> accepts it and reports acceptance", function()
    local child = start("extmark")
    child:input("ix = 1<CR>")
    H.eq("print('hi')", child:wait(shown_extmark, 3000, "ghost text"))
    local params = fake(child, "fake.requests('textDocument/inlineCompletion')[#fake.requests('textDocument/inlineCompletion')]")
    H.eq({ line = 3, character = 0 }, params.position)
    H.eq(2, params.context.triggerKind)
    child:input("<Tab>")
    child:wait("return vim.api.nvim_buf_get_lines(0, 3, 4, false)[1] == \"print('hi')\"", 2000, "accepted text")
    H.eq({ 4, #"print('hi')" }, child:lua("return vim.api.nvim_win_get_cursor(0)"))
    child:wait("return #require('fake_server').requests('workspace/executeCommand') > 0 and vim.iter(require('fake_server').requests('workspace/executeCommand')):any(function(p) return p.command == 'qwen-ls.completionAccepted' end)", 2000, "completionAccepted")
    H.eq("i", child:lua("return vim.api.nvim_get_mode().mode"))
    done(child)
  end)

  H.test("extmark: typing through a suggestion keeps it without a new request", function()
    local child = start("extmark")
    child:input("i")
    child:wait(shown_extmark, 3000, "ghost text")
    local before = fake(child, "#fake.requests('textDocument/inlineCompletion')")
    child:input("pri")
    child:wait("return require('qwen-ls.ghost').shown_text(0) == \"nt('hi')\"", 2000, "the rest of the suggestion")
    vim.wait(150)
    H.eq(before, fake(child, "#fake.requests('textDocument/inlineCompletion')"), "no new request while typing through")
    child:input("x")
    child:wait("return require('qwen-ls.ghost').shown_text(0) ~= \"nt('hi')\"", 2000, "the old suggestion to go")
    done(child)
  end)

  H.test("extmark: accept-word, dismiss, and <Tab> falls back to a tab", function()
    local child = start("extmark")
    child:input("i")
    child:wait(shown_extmark, 3000, "ghost text")
    child:input("<M-Right>")
    child:wait("return vim.api.nvim_get_current_line() == 'print'", 2000, "one word accepted")
    H.eq("('hi')", child:wait(shown_extmark, 2000, "the rest still shown"))
    -- The partial accept is reported for `qwen-ls stats`, with the suggestion's id.
    local partial = child:wait([[
      for _, p in ipairs(require("fake_server").requests("workspace/executeCommand")) do
        if p.command == "qwen-ls.completionPartiallyAccepted" then return p.arguments[1] end
      end
    ]], 2000, "completionPartiallyAccepted")
    H.eq({ id = "c1", unit = "word", chars = 5 }, partial)
    child:input("<C-]>")
    child:wait("return require('qwen-ls.ghost').shown_text(0) == nil", 2000, "dismissed")
    child:input("<Tab>")
    -- Whatever <Tab> does here (python's ftplugin sets softtabstop=4): whitespace, not a suggestion.
    child:wait("return vim.api.nvim_get_current_line():match('^print%s+$')", 2000, "<Tab> doing its usual job")
    done(child)
  end)

  H.test("extmark: multi-line suggestion with virtual lines; range over an auto-closed bracket", function()
    local child = start("extmark")
    child:lua([[
      local fake = require("fake_server")
      fake.default_completion = function(p)
        local line = vim.api.nvim_get_current_line()
        if line:find("%(%)") then -- print(|)
          return { { insertText = '"hello")', range = { start = p.position, ["end"] = { line = p.position.line, character = p.position.character + 1 } } } }
        end
        return { { insertText = "for i in range(3):\n    print(i)" } }
      end
    ]])
    child:input("i")
    H.eq("for i in range(3):\n    print(i)", child:wait(shown_extmark, 3000, "multi-line ghost text"))
    child:input("<Tab>")
    child:wait("return vim.api.nvim_buf_get_lines(0, 2, 4, false)[2] == '    print(i)'", 2000, "two lines accepted")
    H.eq({ 4, 12 }, child:lua("return vim.api.nvim_win_get_cursor(0)"))
    child:input("<CR>print()<Left>")
    H.eq('"hello"', child:wait(shown_extmark, 3000, "the bracket not drawn twice"))
    child:input("<Tab>")
    child:wait([[return vim.api.nvim_get_current_line():match('^%s*print%("hello"%)$')]], 2000, "the bracket replaced, not doubled")
    done(child)
  end)

  H.test("extmark: a response for older text is never shown", function()
    local child = start("extmark")
    child:lua([[
      local fake = require("fake_server")
      fake.delay_ms = 300
      fake.default_completion = function(p) return { { insertText = "col" .. p.position.character } } end
    ]])
    child:input("ia")
    child:wait("return #require('fake_server').requests('textDocument/inlineCompletion') >= 1", 2000, "first request")
    child:input("b")
    H.eq("col2", child:wait(shown_extmark, 3000, "the second answer"))
    vim.wait(400)
    H.eq("col2", child:lua(shown_extmark))
    -- And directly: a response whose changedtick is old is dropped.
    H.eq(true, child:lua([[
      local ghost = require("qwen-ls.ghost")
      ghost.clear(0)
      local client = vim.lsp.get_clients({ name = "qwen-ls" })[1]
      local cur = vim.api.nvim_win_get_cursor(0)
      ghost.on_response({ bufnr = vim.api.nvim_get_current_buf(), client = client,
        changedtick = vim.api.nvim_buf_get_changedtick(0) - 1, cursor = { cur[1] - 1, cur[2] } }, nil, { items = { { insertText = "stale" } } })
      return ghost.shown_text(0) == nil
    ]]))
    done(child)
  end)

  H.test("extmark: UTF-16 ranges after non-ASCII text", function()
    local child = start("extmark")
    child:lua([[
      require("fake_server").default_completion = function(p)
        -- Replace from the start of the line: "é😀" is 3 UTF-16 units.
        return { { insertText = "s = 'é😀!'", range = { start = { line = p.position.line, character = 0 }, ["end"] = p.position } } }
      end
    ]])
    child:input("is = 'é😀")
    H.eq("!'", child:wait(shown_extmark, 3000, "the rest after the emoji"))
    child:input("<Tab>")
    child:wait("return vim.api.nvim_get_current_line() == \"s = 'é😀!'\"", 2000, "accepted")
    done(child)
  end)

  H.test("extmark: next cycles items, or asks again (Invoked) when there is one", function()
    local child = start("extmark")
    child:lua([[
      require("fake_server").completions = { { { insertText = "one" }, { insertText = "two" } } }
    ]])
    child:input("i")
    H.eq("one", child:wait(shown_extmark, 3000, "first item"))
    child:input("<M-]>")
    child:wait("return require('qwen-ls.ghost').shown_text(0) == 'two'", 2000, "second item")
    child:input("<M-[>")
    child:wait("return require('qwen-ls.ghost').shown_text(0) == 'one'", 2000, "back to the first")
    child:input("<C-]><M-]>")
    child:wait("local r = require('fake_server').requests('textDocument/inlineCompletion'); return r[#r].context.triggerKind == 1", 2000, "an invoked request")
    done(child)
  end)

  H.test("native: Neovim's inline completion shows, accepts and dismisses", function()
    local child = H.child()
    local has_native = child:lua("return vim.lsp.inline_completion ~= nil")
    child:stop()
    if not has_native then
      H.skip("native", "this Neovim has no vim.lsp.inline_completion")
      return
    end
    child = start("native")
    local ns = "local ns = vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion']; local m = ns and vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true }) or {}; "
    child:input("i")
    H.eq("print('hi')", child:wait(ns .. "return m[1] and m[1][4].virt_text and m[1][4].virt_text[1][1]", 3000, "native ghost text"))
    child:input("<C-]>")
    child:wait(ns .. "return #m == 0", 2000, "dismissed")
    child:input("x<BS>")
    child:wait(ns .. "return #m > 0", 3000, "shown again after typing")
    child:input("<Tab>")
    child:wait("return vim.api.nvim_get_current_line() == \"print('hi')\"", 2000, "accepted")
    child:wait("return vim.iter(require('fake_server').requests('workspace/executeCommand')):any(function(p) return p.command == 'qwen-ls.completionAccepted' end)", 2000, "completionAccepted")
    -- Accept-word on a fresh line (Neovim has none of its own; the plugin inserts the next word).
    child:input("<CR>")
    child:wait(ns .. "return #m > 0", 3000, "a suggestion on the new line")
    child:input("<M-Right>")
    child:wait("return vim.api.nvim_get_current_line():match('^%s*print$')", 2000, "one word accepted")
    done(child)
  end)

  H.test(":QwenRefactor sends the visual range and the server's edit lands", function()
    local child = start("extmark")
    child:lua("vim.api.nvim_win_set_cursor(0, {2, 4})")
    child:input("vee<Esc>")
    child:cmd("'<,'>QwenRefactor use sum()")
    child:wait("return vim.api.nvim_buf_get_lines(0, 1, 2, false)[1] == '    -- refactored: use sum() + b'", 2000, "the edit")
    local args = fake(child, "fake.requests('workspace/executeCommand')[#fake.requests('workspace/executeCommand')]")
    H.eq("qwen-ls.refactor", args.command)
    H.eq({ start = { line = 1, character = 4 }, ["end"] = { line = 1, character = 12 } }, args.arguments[1].range)
    H.eq("use sum()", args.arguments[1].instruction)
    H.matches("main%.py$", args.arguments[1].uri)
    done(child)
  end)

  H.test(":QwenRefactor without a range sends an empty range at the cursor; linewise ranges cover whole lines", function()
    local child = start("extmark")
    child:lua("vim.api.nvim_win_set_cursor(0, {2, 6})")
    child:cmd("QwenRefactor add a docstring")
    child:wait("return #require('fake_server').requests('workspace/executeCommand') > 1", 2000, "request")
    local args = fake(child, "fake.requests('workspace/executeCommand')[#fake.requests('workspace/executeCommand')].arguments[1]")
    H.eq({ start = { line = 1, character = 6 }, ["end"] = { line = 1, character = 6 } }, args.range)
    local line2 = child:wait("local l = vim.api.nvim_buf_get_lines(0, 1, 2, false)[1]; return l:find('refactored') and l", 2000, "the edit")
    child:cmd("1,2QwenRefactor x")
    local args2 = child:wait("local r = require('fake_server').requests('workspace/executeCommand'); local a = r[#r].arguments[1]; return a.instruction == 'x' and a", 2000, "second request")
    H.eq({ start = { line = 0, character = 0 }, ["end"] = { line = 1, character = #line2 } }, args2.range)
    done(child)
  end)

  H.test(":QwenRefactor with no instruction asks for one; code actions without one ask too", function()
    local child = start("extmark")
    child:lua("vim.ui.input = function(_, cb) cb('from the prompt') end")
    child:cmd("QwenRefactor")
    child:wait("local r = require('fake_server').requests('workspace/executeCommand'); return r[#r].arguments[1].instruction == 'from the prompt'", 2000, "prompted")
    child:lua([[
      local client = vim.lsp.get_clients({ name = "qwen-ls" })[1]
      client.commands["qwen-ls.applyInstruction"]({ title = "t", command = "qwen-ls.applyInstruction", arguments = { {} } }, { client_id = client.id, bufnr = 0 })
    ]])
    local last = child:wait("local r = require('fake_server').requests('workspace/executeCommand'); return r[#r].command == 'qwen-ls.applyInstruction' and r[#r]", 2000, "code action command")
    H.eq({ { instruction = "from the prompt" } }, last.arguments)
    done(child)
  end)

  H.test(":QwenRefactorWorkspace and :QwenExplain", function()
    local child = start("extmark")
    child:cmd("QwenRefactorWorkspace rename add to plus")
    local last = child:wait("local r = require('fake_server').requests('workspace/executeCommand'); return r[#r].command == 'qwen-ls.applyInstruction' and r[#r]", 2000, "applyInstruction")
    H.eq({ { instruction = "rename add to plus" } }, last.arguments)
    child:lua("vim.api.nvim_win_set_cursor(0, {1, 5})")
    child:cmd("QwenExplain")
    local lines = child:wait("local w = require('qwen-ls.commands').explain_win; return w and vim.api.nvim_win_is_valid(w) and vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false)", 2000, "the float")
    H.truthy(vim.tbl_contains(lines, "Adds two numbers."), "markdown in the float: " .. vim.inspect(lines))
    local explain = fake(child, "vim.iter(fake.requests('workspace/executeCommand')):find(function(p) return p.command == 'qwen-ls.explain' end)")
    H.eq({ line = 0, character = 5 }, explain.arguments[1].position)
    done(child)
  end)

  H.test("status follows $/progress, qwen-ls/status and showMessage", function()
    local child = start("extmark")
    child:wait("return require('qwen-ls').statusline() == 'qwen-ls'", 2000, "ready from qwen-ls.status")
    child:lua([[
      local fake = require("fake_server")
      fake.notify("qwen-ls/status", { state = "loading-model", message = "" })
      fake.notify("$/progress", { token = "m", value = { kind = "begin", title = "qwen-ls: loading model", percentage = 25 } })
    ]])
    child:wait("return require('qwen-ls').statusline() == 'qwen-ls: loading model 25%'", 2000, "loading model")
    child:lua([[
      local fake = require("fake_server")
      fake.notify("$/progress", { token = "m", value = { kind = "end" } })
      fake.notify("qwen-ls/status", { state = "indexing", message = "" })
    ]])
    child:wait("return require('qwen-ls').statusline() == 'qwen-ls: indexing'", 2000, "indexing")
    child:lua([[require("fake_server").notify("window/showMessage", { type = 1, message = "model not found: set settings.model" })]])
    child:wait("return require('qwen-ls').statusline() == 'qwen-ls: error'", 2000, "error")
    H.eq("model not found: set settings.model", child:lua("return require('qwen-ls').status().detail"))
    done(child)
  end)

  H.test("update_settings sends the whole object", function()
    local child = start("extmark", { settings = { model = "/m" } })
    child:lua("require('qwen-ls').update_settings({ ['hover.enabled'] = false })")
    local params = child:wait("local r = require('fake_server').requests('workspace/didChangeConfiguration'); return #r >= 2 and r[#r]", 2000, "didChangeConfiguration")
    H.eq({ settings = { ["qwen-ls"] = { hover = { enabled = false } } } }, params)
    done(child)
  end)

  H.test("a project-local .nvim.lua cannot change where code is sent or which program runs", function()
    local child = start("extmark", { settings = { openai = { endpoint = "http://127.0.0.1:8000/v1" } } })
    local exrc = workspace .. "/.nvim.lua"
    vim.fn.writefile({
      "require('qwen-ls').update_settings({ backend = 'openai', ['openai.endpoint'] = 'https://attacker.example/v1',",
      "  openai = { apiKeyEnv = 'GITHUB_TOKEN' }, logFile = '/tmp/x', completion = { maxTokens = 3 } })",
    }, exrc)
    child:cmd("source " .. exrc)
    local params = child:wait("local r = require('fake_server').requests('workspace/didChangeConfiguration'); return #r >= 2 and r[#r]", 2000, "didChangeConfiguration")
    H.eq({ settings = { ["qwen-ls"] = { openai = { endpoint = "http://127.0.0.1:8000/v1" }, completion = { maxTokens = 3 } } } }, params)
    H.matches("may not set backend, openai%.endpoint, openai%.apiKeyEnv, logFile", child:lua("return vim.fn.execute('messages')"))
    -- setup() again from the project file: the binary stays the user's.
    vim.fn.writefile({ "require('qwen-ls').setup({ path = '/tmp/evil', cmd = { '/tmp/evil' } })" }, exrc)
    child:cmd("source " .. exrc)
    H.eq(fake_bin, child:lua("return require('qwen-ls').config.path"))
    H.eq(true, child:lua("return type(require('qwen-ls').config.cmd) ~= 'table' or require('qwen-ls').config.cmd[1] ~= '/tmp/evil'"))
    vim.fn.delete(exrc)
    done(child)
  end)

  H.test(":checkhealth qwen-ls reports binary, version, model and index", function()
    local child = start("extmark")
    child:cmd("checkhealth qwen-ls")
    local text = table.concat(child:lines(), "\n")
    H.matches("OK binary: .*bin/qwen%-ls", text)
    H.matches("OK version: qwen%-ls 0%.0%.0%-fake", text)
    H.matches("OK model: fake%-model %(ready%)", text)
    H.matches("OK index: 3 files", text)
    H.truthy(not text:find("ERROR"), "no ERROR in:\n" .. text)
    done(child)
  end)

  H.test(":checkhealth qwen-ls reports a missing binary as an error", function()
    local child = H.child({ cwd = workspace })
    child:lua("require('qwen-ls').setup({ path = '/nonexistent/qwen-ls' })")
    child:cmd("checkhealth qwen-ls")
    H.matches("ERROR binary not found: /nonexistent/qwen%-ls", table.concat(child:lines(), "\n"))
    done(child)
  end)

  H.test(":QwenRestart starts a fresh client", function()
    local child = start("extmark")
    local first = child:lua("return vim.lsp.get_clients({ name = 'qwen-ls' })[1].id")
    child:cmd("QwenRestart")
    child:wait("local c = vim.lsp.get_clients({ name = 'qwen-ls', bufnr = 0 })[1]; return c and c.id ~= " .. first .. " and c.initialized", 5000, "a new client")
    done(child)
  end)
end
