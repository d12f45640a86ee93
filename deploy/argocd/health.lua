-- Argo CD health check for SekoiaIntelSync (sync.sekoia-intel.dev/v1alpha1).
-- Argo CD runs it with gopher-lua (Lua 5.1): `obj` is the live resource; return {status, message}.
-- The order mirrors kstatus (what Flux reads), so both tools agree on the same object:
--   1. a stale or missing status says nothing about the current spec  -> Progressing
--   2. Stalled=True: only a change by the user helps                  -> Degraded
--   3. Reconciling=True: Kubernetes is still converging (also while   -> Progressing
--      a suspended runtime scales down)
--   4. suspended on purpose (spec.suspend, Ready reason Suspended)    -> Suspended
--   5. Ready=True                                                     -> Healthy
-- Anything else is Progressing: the operator pairs every Ready=False with Reconciling or Stalled,
-- so an unpaired one is a transient read, not a failure worth paging for.
local hs = {}

local function condition(conditions, kind)
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator stops the runtime and hands over the collection"
  return hs
end

local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = status.conditions
local ready = condition(conditions, "Ready")
local stalled = condition(conditions, "Stalled")
local reconciling = condition(conditions, "Reconciling")

if is_true(stalled) then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. text(stalled, "needs a change to the resource")
  return hs
end

if is_true(reconciling) then
  hs.status = "Progressing"
  hs.message = text(reconciling, "Reconciling")
  return hs
end

local suspended = obj.spec ~= nil and obj.spec.suspend == true
if suspended and ready ~= nil and ready.reason == "Suspended" then
  hs.status = "Suspended"
  hs.message = text(ready, "Suspended: the runtime is scaled to zero")
  return hs
end

if is_true(ready) then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = text(ready, "Waiting for the Ready condition")
return hs
