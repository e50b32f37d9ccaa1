--- Version guards. The plugin supports Neovim 0.10+; the few APIs that changed shape in 0.11 (client methods
--- called with `:`, `vim.validate`'s positional form) are wrapped here so that no other module needs to care.
--- Position-encoding conversions are written out in Lua because `vim.str_byteindex`/`vim.str_utfindex`
--- changed signature in 0.11.
local M = {}

M.MIN_VERSION = "0.10"

--- Whether this Neovim is at least `version` ("0.11").
---@param version string
---@return boolean
function M.has(version)
  return vim.fn.has("nvim-" .. version) == 1
end

--- `vim.validate` for one value: 0.11+ positional form, else the table form (deprecated there).
---@param name string
---@param value any
---@param types string|string[]|fun(v:any):boolean,string?
---@param optional boolean?
---@param message string?
function M.validate(name, value, types, optional, message)
  if M.has("0.11") then
    vim.validate(name, value, types, optional, message)
  elseif type(types) == "function" then
    vim.validate({ [name] = { value, types, message or optional } })
  else
    vim.validate({ [name] = { value, types, optional } })
  end
end

--- `client:request(...)` (0.11+) or `client.request(...)` (0.10). Returns ok, request id.
function M.request(client, method, params, handler, bufnr)
  if M.has("0.11") then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

--- Synchronous request: result, err.
function M.request_sync(client, method, params, timeout_ms, bufnr)
  local response, err
  if M.has("0.11") then
    response, err = client:request_sync(method, params, timeout_ms, bufnr)
  else
    response, err = client.request_sync(method, params, timeout_ms, bufnr)
  end
  if not response then
    return nil, err or "no response"
  end
  if response.err then
    return nil, response.err.message or vim.inspect(response.err)
  end
  return response.result, nil
end

function M.notify(client, method, params)
  if M.has("0.11") then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel_request(client, id)
  if M.has("0.11") then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

function M.stop(client, force)
  if M.has("0.11") then
    return client:stop(force)
  end
  return client.stop(force)
end

function M.is_stopped(client)
  if M.has("0.11") then
    return client:is_stopped()
  end
  return client.is_stopped()
end

--- Running qwen-ls clients, optionally only those attached to `bufnr`.
---@return vim.lsp.Client[]
function M.clients(bufnr)
  return vim.lsp.get_clients({ name = "qwen-ls", bufnr = bufnr })
end

--- Byte offset (0-based) of an LSP `character` in `line` for `encoding` ("utf-8", "utf-16", "utf-32").
--- Characters past the end clamp to the line length (LSP allows that).
---@param line string
---@param character integer
---@param encoding string
---@return integer
function M.byte_col(line, character, encoding)
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local units, i = 0, 1
  while i <= #line and units < character do
    local b = line:byte(i)
    local len = b < 0x80 and 1 or b < 0xE0 and 2 or b < 0xF0 and 3 or 4
    units = units + ((encoding == "utf-16" and len == 4) and 2 or 1)
    i = i + len
  end
  return math.min(i - 1, #line)
end

--- LSP `character` of the byte offset `col` (0-based) in `line`.
---@param line string
---@param col integer
---@param encoding string
---@return integer
function M.lsp_col(line, col, encoding)
  if encoding == "utf-8" then
    return col
  end
  local units, i = 0, 1
  while i <= math.min(col, #line) do
    local b = line:byte(i)
    local len = b < 0x80 and 1 or b < 0xE0 and 2 or b < 0xF0 and 3 or 4
    units = units + ((encoding == "utf-16" and len == 4) and 2 or 1)
    i = i + len
  end
  return units
end

--- The text of line `row` (0-based) of `bufnr`, or "" past the end.
function M.line(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

--- An LSP position {line, character} → 0-based {row, col (bytes)} in `bufnr`.
function M.from_lsp(bufnr, position, encoding)
  return { position.line, M.byte_col(M.line(bufnr, position.line), position.character, encoding) }
end

--- 0-based {row, col (bytes)} → LSP position.
function M.to_lsp(bufnr, row, col, encoding)
  return { line = row, character = M.lsp_col(M.line(bufnr, row), col, encoding) }
end

return M
