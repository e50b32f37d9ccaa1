--- Unit tests of the plugin's pure logic, run in the test process itself.
return function(H)
  local config = require("qwen-ls.config")
  local compat = require("qwen-ls.compat")
  local ghost = require("qwen-ls.ghost")
  local status = require("qwen-ls.status")
  local commands = require("qwen-ls.commands")

  H.test("config: defaults", function()
    local c, warnings = config.resolve(nil)
    H.eq({}, warnings)
    H.eq("auto", c.ghost_text.mode)
    H.eq("<Tab>", c.keymaps.accept)
    H.eq({ "qwen-ls", "serve" }, config.cmd(c))
    H.truthy(vim.tbl_contains(c.filetypes, "rust"))
  end)

  H.test("config: tables merge key by key, lists replace", function()
    local c = config.resolve({
      keymaps = { accept = "<C-y>", dismiss = false },
      ghost_text = { debounce_ms = 5 },
      filetypes = { "lua" },
      path = "/opt/qwen-ls",
    })
    H.eq("<C-y>", c.keymaps.accept)
    H.eq(false, c.keymaps.dismiss)
    H.eq("<M-]>", c.keymaps.next, "untouched keymap keeps its default")
    H.eq(5, c.ghost_text.debounce_ms)
    H.eq(true, c.ghost_text.enabled)
    H.eq({ "lua" }, c.filetypes)
    H.eq({ "/opt/qwen-ls", "serve" }, config.cmd(c))
    H.eq("/opt/qwen-ls", config.binary(c))
  end)

  H.test("config: the defaults table is never mutated", function()
    config.resolve({ keymaps = { accept = "<C-y>" }, filetypes = { "x" } })
    H.eq("<Tab>", config.defaults.keymaps.accept)
    H.truthy(vim.tbl_contains(config.defaults.filetypes, "rust"))
  end)

  H.test("config: settings may be nested or dotted, and are merged into one nested table", function()
    local c = config.resolve({
      settings = { model = "/m", ["completion.maxTokens"] = 8, completion = { enabled = false }, threads = { decode = 2 } },
    })
    H.eq({ model = "/m", completion = { maxTokens = 8, enabled = false }, threads = { decode = 2 } }, c.settings)
  end)

  H.test("config: user-only settings keep the user's values; project files are recognised", function()
    local settings, overridden = config.keep_user_only({
      backend = "openai",
      openai = { endpoint = "https://attacker.example/v1", model = "m" },
      completion = { maxTokens = 3 },
      codeActions = { checkCommand = { "cargo check", "sh ./steal.sh" }, maxRounds = 2 },
    }, { openai = { model = "m" }, codeActions = { checkCommand = { "cargo check" } } })
    H.eq({
      openai = { model = "m" },
      completion = { maxTokens = 3 },
      codeActions = { checkCommand = { "cargo check" }, maxRounds = 2 },
    }, settings)
    H.eq({ "backend", "openai.endpoint", "codeActions.checkCommand" }, overridden)
    local dir = H.tempdir()
    -- Not a tail call: the calling file's frame must stay on the stack.
    local body = { "local source = require('qwen-ls.config').project_source()", "return source" }
    vim.fn.writefile(body, dir .. "/.nvim.lua")
    vim.fn.writefile(body, dir .. "/init.lua")
    H.eq(dir .. "/.nvim.lua", dofile(dir .. "/.nvim.lua"))
    H.eq(nil, dofile(dir .. "/init.lua"))
  end)

  H.test("config: unknown settings are warnings, unknown options are errors", function()
    local _, warnings = config.resolve({ settings = { modle = "x", completion = { maxTokenz = 1 } } })
    H.eq(2, #warnings)
    H.matches("settings%.completion%.maxTokenz", warnings[1])
    H.matches("settings%.modle", warnings[2])
    H.raises(function()
      config.resolve({ keymap = {} })
    end, 'unknown option "keymap"')
  end)

  H.test("config: speculative decoding and the extra models are settings like model, also from a project file", function()
    local settings = {
      draftModel = "/models/small.gguf",
      ["completion.model"] = "qwen2.5-coder-0.5b",
      completion = { speculative = "draft", latencyMs = 0 },
      hover = { speculative = "off" },
      ["codeActions.speculative"] = "lookup",
    }
    local c, warnings = config.resolve({ settings = settings })
    H.eq({}, warnings)
    local nested = {
      draftModel = "/models/small.gguf",
      completion = { model = "qwen2.5-coder-0.5b", speculative = "draft", latencyMs = 0 },
      hover = { speculative = "off" },
      codeActions = { speculative = "lookup" },
    }
    H.eq(nested, c.settings)
    -- Like `model`, not user-only: a project's .nvim.lua may pick them.
    local kept, overridden = config.keep_user_only(nested, nil)
    H.eq(nested, kept)
    H.eq({}, overridden)
  end)

  H.test("config: bad values name the option", function()
    H.raises(function()
      config.resolve({ filetypes = "rust" })
    end, "filetypes")
    H.raises(function()
      config.resolve({ ghost_text = { mode = "virtual" } })
    end, "ghost_text.mode")
    H.raises(function()
      config.resolve({ keymaps = { accept = 1 } })
    end, "keymaps.accept")
    H.raises(function()
      config.resolve({ keymaps = { accept_all = "<C-a>" } })
    end, "keymaps.accept_all")
    H.raises(function()
      config.resolve({ cmd = {} })
    end, "cmd")
    H.raises(function()
      config.resolve({ on_attach = "yes" })
    end, "on_attach")
    H.raises(function()
      config.resolve("rust")
    end, "opts")
  end)

  H.test("config: cmd may be a function (e.g. vim.lsp.rpc.connect)", function()
    local fn = function() end
    local c = config.resolve({ cmd = fn })
    H.eq(fn, config.cmd(c))
    H.eq("qwen-ls", config.binary(c))
  end)

  H.test("config: SERVER_KEYS is PROTOCOL.md's table", function()
    local text = table.concat(vim.fn.readfile(H.root .. "/../../docs/PROTOCOL.md"), "\n")
    local section = text:match("## Configuration(.-)\n## ")
    local keys = {}
    for line in section:gmatch("[^\n]+") do
      local first = line:match("^|%s*(`[^|]+)|")
      if first then
        for key in first:gmatch("`([^`]+)`") do
          table.insert(keys, key)
        end
      end
    end
    table.sort(keys)
    local ours = vim.deepcopy(config.SERVER_KEYS)
    table.sort(ours)
    H.eq(keys, ours)
  end)

  H.test("config: ghost-text mode selection", function()
    H.eq("native", config.ghost_mode({ enabled = true, mode = "auto" }, true))
    H.eq("extmark", config.ghost_mode({ enabled = true, mode = "auto" }, false))
    H.eq("extmark", config.ghost_mode({ enabled = true, mode = "extmark" }, true))
    H.eq("extmark", config.ghost_mode({ enabled = true, mode = "native" }, false))
    H.eq(nil, config.ghost_mode({ enabled = false, mode = "native" }, true))
  end)

  H.test("compat: position encodings", function()
    local line = "aé😀b" -- a(1) é(2 bytes) 😀(4 bytes) b
    H.eq(0, compat.byte_col(line, 0, "utf-16"))
    H.eq(1, compat.byte_col(line, 1, "utf-16"))
    H.eq(3, compat.byte_col(line, 2, "utf-16"))
    H.eq(7, compat.byte_col(line, 4, "utf-16"), "the emoji is two UTF-16 units")
    H.eq(7, compat.byte_col(line, 3, "utf-32"))
    H.eq(8, compat.byte_col(line, 99, "utf-16"), "clamped to the line")
    H.eq(5, compat.byte_col(line, 5, "utf-8"))
    H.eq(4, compat.lsp_col(line, 7, "utf-16"))
    H.eq(3, compat.lsp_col(line, 7, "utf-32"))
    H.eq(7, compat.lsp_col(line, 7, "utf-8"))
    H.eq(5, compat.lsp_col(line, 8, "utf-16"))
  end)

  H.test("ghost: what remains after typing through a suggestion", function()
    local item = { text = "return a + b" }
    H.eq("return a + b", ghost.remaining(item, ""))
    H.eq("urn a + b", ghost.remaining(item, "ret"))
    H.eq("", ghost.remaining(item, "return a + b"))
    H.eq(nil, ghost.remaining(item, "rex"))
    H.eq(nil, ghost.remaining(item, nil))
  end)

  H.test("ghost: display lines drop an auto-closed tail drawn twice", function()
    H.eq({ '"hi"' }, ghost.display_lines('"hi")', ")"))
    H.eq({ "x)" }, ghost.display_lines("x)", ""))
    H.eq({ "a", "b)" }, ghost.display_lines("a\nb)", ")"), "multi-line: the tail stays after the first line")
    H.eq({ "", "  body" }, ghost.display_lines("\n  body", ""))
  end)

  H.test("ghost: next word", function()
    H.eq("return", ghost.first_word("return a + b"))
    H.eq(" a", ghost.first_word(" a + b"))
    H.eq(" +", ghost.first_word(" + b"))
    H.eq("\n    ", ghost.first_word("\n    x = 1"))
    H.eq("(", ghost.first_word("(")) -- the last piece
    H.eq("foo_bar1", ghost.first_word("foo_bar1.baz"))
  end)

  H.test("status: loading, indexing, ready, error, stopped", function()
    local m = status.new()
    H.eq("stopped", m:state())
    m:server_starting()
    H.eq("starting", m:state())
    m:progress("t", { kind = "begin", title = "qwen-ls: loading model", percentage = 9.6 })
    H.eq("qwen-ls: loading model 10%", m:view().text)
    m:progress("t", { kind = "report", message = "shard 2/3", percentage = 50 })
    H.eq("qwen-ls: loading model: shard 2/3", m:view().detail)
    m:progress(2, { kind = "begin", title = "qwen-ls: indexing" })
    H.eq("loading-model", m:state(), "loading outranks indexing")
    m:progress("t", { kind = "end" })
    H.eq("indexing", m:state())
    m:progress(2, { kind = "end" })
    m:status({ state = "ready", message = "fake" })
    H.eq({ state = "ready", text = "qwen-ls", detail = "fake", busy = false }, m:view())
    m:show_message(2, "a warning")
    H.eq("ready", m:state())
    m:show_message(1, "model missing")
    H.eq("error", m:state())
    H.eq("model missing", m:view().detail)
    m:status({ state = "bogus" })
    H.eq("error", m:state(), "malformed status ignored")
    m:status({ state = "ready" })
    H.eq("ready", m:state(), "a healthy status clears the error")
    m:server_stopped("exited")
    H.eq("qwen-ls: stopped", m:view().text)
  end)

  H.test("commands: argument building", function()
    local range = { start = { line = 1, character = 0 }, ["end"] = { line = 2, character = 3 } }
    H.eq({ { uri = "file:///a.py", range = range, instruction = "add types" } }, commands.refactor_args("file:///a.py", range, "  add types "))
    H.eq({ { instruction = "rename" } }, commands.apply_instruction_args("rename"))
    H.eq({ { instruction = "rename", uris = { "file:///a" } } }, commands.apply_instruction_args("rename", { "file:///a" }))
  end)

  H.test("doc: help tags build and every tag the README promises exists", function()
    local dir = H.tempdir()
    vim.fn.mkdir(dir .. "/doc", "p")
    vim.fn.writefile(vim.fn.readfile(H.root .. "/doc/qwen-ls.txt"), dir .. "/doc/qwen-ls.txt")
    vim.cmd("helptags " .. vim.fn.fnameescape(dir .. "/doc"))
    local tags = table.concat(vim.fn.readfile(dir .. "/doc/tags"), "\n")
    for _, tag in ipairs({ "qwen-ls-settings", "qwen-ls.setup()", ":QwenRefactor", ":QwenRefactorWorkspace", ":QwenExplain", "qwen-ls-health" }) do
      H.truthy(tags:find(tag, 1, true), "tag " .. tag)
    end
    -- Every server key is documented.
    local help = table.concat(vim.fn.readfile(H.root .. "/doc/qwen-ls.txt"), "\n")
    for _, key in ipairs(config.SERVER_KEYS) do
      H.truthy(help:find("  " .. key .. " ", 1, true), "help documents " .. key)
    end
  end)

  H.test("client: capabilities announce file watching (unless off) and change annotations", function()
    local client = require("qwen-ls.client")
    local on = client.capabilities({ watch_files = true })
    H.eq(true, on.workspace.didChangeWatchedFiles.dynamicRegistration)
    H.truthy(on.workspace.workspaceEdit.changeAnnotationSupport, "changeAnnotationSupport")
    H.eq(true, on.workspace.workspaceEdit.documentChanges, "documentChanges (annotations ride on them)")
    H.truthy(on.textDocument.inlineCompletion, "inlineCompletion")
    local off = client.capabilities({ watch_files = false })
    H.eq(vim.lsp.protocol.make_client_capabilities().workspace.didChangeWatchedFiles, off.workspace.didChangeWatchedFiles)
  end)

  H.test("client: the server's announced languages decide what it serves", function()
    local client = require("qwen-ls.client")
    local announced = { server_capabilities = { experimental = { qwenLs = { languageIds = { "rust", "go" } } } } }
    H.eq({ "rust", "go" }, client.served_languages(announced))
    H.eq(true, client.serves(announced, "go"))
    H.eq(false, client.serves(announced, "java"))
    H.eq(nil, client.served_languages({ server_capabilities = {} }))
    H.eq(true, client.serves({ server_capabilities = {} }, "java"), "an older server: the configured filetypes stand")
    H.eq({ "rust", "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "java" }, config.FILETYPES)
  end)

  H.test("review: only edits whose annotation needs confirmation are held", function()
    local review = require("qwen-ls.review")
    H.eq(true, review.needs_review({ changeAnnotations = { r = { label = "x", needsConfirmation = true } } }))
    H.eq(false, review.needs_review({ changeAnnotations = { r = { label = "x" } } }))
    H.eq(false, review.needs_review({ documentChanges = {} }))
    H.eq(false, review.needs_review(nil))
  end)

  H.test("review: the diff of an annotated edit against the buffer", function()
    local review = require("qwen-ls.review")
    local path = H.tempdir() .. "/lib.rs"
    vim.fn.writefile({ "fn a() {", "    1", "}" }, path)
    local uri = vim.uri_from_fname(path)
    local edit = {
      documentChanges = {
        {
          textDocument = { uri = uri, version = vim.NIL },
          edits = {
            { range = { start = { line = 1, character = 4 }, ["end"] = { line = 1, character = 5 } }, newText = "2", annotationId = "r" },
          },
        },
      },
      changeAnnotations = { r = { label = "x", needsConfirmation = true } },
    }
    local lines = review.diff_lines(edit, "utf-16")
    H.truthy(lines[1]:find("^%-%-%- a/"), lines[1])
    H.truthy(vim.tbl_contains(lines, "-    1"), vim.inspect(lines))
    H.truthy(vim.tbl_contains(lines, "+    2"), vim.inspect(lines))
  end)
end
