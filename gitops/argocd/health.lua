-- Argo CD health check for wa-operator.io WhatsAppInstance, WhatsAppProvider and
-- ClusterWhatsAppProvider. Their status is in kstatus format (status.observedGeneration and
-- the conditions Ready, Reconciling and Stalled), so this reads it as kstatus does
-- (sigs.k8s.io/cli-utils pkg/kstatus/status): Current is Healthy, InProgress Progressing,
-- Failed Degraded, and Terminating Progressing, as Argo CD shows any object being deleted.
-- Written for Argo CD's default sandbox: no string, os or other standard library.
local hs = {}
local metadata = obj.metadata or {}
local status = obj.status or {}

if metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  for _, finalizer in ipairs(metadata.finalizers or {}) do
    if finalizer == "wa-operator.io/finalizer" then
      hs.deletionMessage = "Pending deletion: wa-operator removes the provider's session (unless spec.deletionPolicy is Orphan), then its finalizer " .. finalizer
    end
  end
  return hs
end

-- The CRDs default status to {observedGeneration: -1}; no status at all means a CRD older
-- than that default. Either way the operator has not looked yet.
if status.observedGeneration == nil or status.observedGeneration < 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for wa-operator to look at it"
  return hs
end
if metadata.generation ~= nil and status.observedGeneration ~= metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for wa-operator to observe generation " .. metadata.generation .. " (status is for generation " .. status.observedGeneration .. ")"
  return hs
end

-- As kstatus: the first Reconciling or Stalled condition that is True decides.
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Reconciling" and condition.status == "True" then
    hs.status = "Progressing"
    hs.message = (condition.reason or "") .. ": " .. (condition.message or "")
    return hs
  end
  if condition.type == "Stalled" and condition.status == "True" then
    hs.status = "Degraded"
    hs.message = (condition.reason or "") .. ": " .. (condition.message or "")
    return hs
  end
end
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Ready" and condition.status == "True" then
    hs.status = "Healthy"
    hs.message = condition.message or ""
    return hs
  end
  if condition.type == "Ready" and (condition.status == "False" or condition.status == "Unknown") then
    hs.status = "Progressing"
    hs.message = (condition.reason or "") .. ": " .. (condition.message or "")
    return hs
  end
end

-- Observed, without conditions: kstatus calls this Current.
hs.status = "Healthy"
hs.message = "Observed generation " .. status.observedGeneration
return hs
