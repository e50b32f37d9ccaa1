--- Test entry point: `nvim -l tests/run.lua unit` or `nvim -l tests/run.lua integration`.
local H = dofile(vim.fs.dirname(vim.fs.normalize(debug.getinfo(1, "S").source:sub(2))) .. "/harness.lua")
vim.opt.rtp:prepend(H.root)
package.path = H.root .. "/tests/?.lua;" .. package.path

local suite = _G.arg[1] or "unit"
local files
if suite == "unit" then
  files = { "unit/pure_spec.lua", "unit/plugin_spec.lua" }
elseif suite == "integration" then
  files = { "integration/server_spec.lua" }
else
  io.stderr:write("usage: nvim -l tests/run.lua unit|integration\n")
  os.exit(2)
end
io.stdout:write(("Neovim %s, suite %s\n"):format(tostring(vim.version()), suite))
for _, file in ipairs(files) do
  local ok, err = xpcall(function()
    dofile(H.root .. "/tests/" .. file)(H)
  end, debug.traceback)
  if not ok then
    H.test(file .. " (loading)", function()
      error(err, 0)
    end)
  end
end
H.finish()
