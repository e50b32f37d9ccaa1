--- The server's state, folded from `qwen-ls/status` (authoritative), `$/progress` (phases with percentages)
--- and `window/showMessage` errors — the same rules as the VS Code status bar. One model per client id.
--- Read it with `require("qwen-ls").statusline()` or `:QwenStatus`.
local M = {}

local PROTOCOL_STATES = { starting = true, ["loading-model"] = true, indexing = true, ready = true, error = true }

local LABELS = {
  starting = "starting",
  ["loading-model"] = "loading model",
  indexing = "indexing",
  ready = "ready",
  error = "error",
  stopped = "stopped",
}

--- Which phase a progress title belongs to.
function M.phase_of_title(title)
  local t = (title or ""):lower()
  if t:find("model", 1, true) or t:find("download", 1, true) then
    return "loading-model"
  end
  if t:find("index", 1, true) then
    return "indexing"
  end
  return "other"
end

local Model = {}
Model.__index = Model

function M.new()
  return setmetatable({ reported = "stopped", reported_message = "", error_message = nil, phases = {}, order = 0 }, Model)
end

function Model:server_starting()
  self.reported, self.reported_message, self.error_message, self.phases = "starting", "", nil, {}
end

function Model:server_stopped(reason)
  self.reported, self.reported_message, self.phases = "stopped", reason or "", {}
end

--- A `qwen-ls/status` payload or `qwen-ls.status` result; anything else is ignored.
function Model:status(value)
  if type(value) ~= "table" or type(value.state) ~= "string" or not PROTOCOL_STATES[value.state] then
    return
  end
  self.reported = value.state
  self.reported_message = type(value.message) == "string" and value.message or ""
  if value.state ~= "error" then
    self.error_message = nil
  end
end

--- A `$/progress` value for `token`.
function Model:progress(token, value)
  if type(value) ~= "table" then
    return
  end
  local key = tostring(token)
  if value.kind == "begin" then
    self.order = self.order + 1
    self.phases[key] = {
      state = M.phase_of_title(value.title),
      title = value.title or "",
      message = value.message,
      percentage = value.percentage,
      order = self.order,
    }
    return
  end
  local phase = self.phases[key]
  if not phase then
    return
  end
  if value.kind == "end" then
    self.phases[key] = nil
    return
  end
  phase.message = value.message or phase.message
  phase.percentage = value.percentage or phase.percentage
end

--- `window/showMessage`: type 1 (Error) marks the state as error.
function Model:show_message(type_, message)
  if type_ == 1 then
    self.error_message = message
  end
end

--- { state, text, detail, busy }
function Model:view()
  if self.reported == "stopped" then
    return { state = "stopped", text = "qwen-ls: stopped", detail = self.reported_message, busy = false }
  end
  if self.reported == "error" or self.error_message then
    return { state = "error", text = "qwen-ls: error", detail = self.error_message or self.reported_message, busy = false }
  end
  local best
  for _, phase in pairs(self.phases) do
    if phase.state == "loading-model" and (not best or best.state ~= "loading-model") then
      best = phase
    elseif phase.state == "indexing" and not best then
      best = phase
    end
  end
  if best then
    local pct = best.percentage and (" %d%%"):format(math.floor(best.percentage + 0.5)) or ""
    local detail = best.title .. (best.message and best.message ~= "" and (": " .. best.message) or "")
    return { state = best.state, text = "qwen-ls: " .. LABELS[best.state] .. pct, detail = detail, busy = true }
  end
  local text = self.reported == "ready" and "qwen-ls" or ("qwen-ls: " .. LABELS[self.reported])
  return { state = self.reported, text = text, detail = self.reported_message, busy = self.reported ~= "ready" }
end

function Model:state()
  return self:view().state
end

-- Models of the running clients, by client id.
M.by_client = {}

function M.get(client_id)
  local model = M.by_client[client_id]
  if not model then
    model = M.new()
    M.by_client[client_id] = model
  end
  return model
end

return M
