local t = setmetatable({}, { __tostring = function() while true do end end })
local s = tostring(t)
-- expect: rejected: tostring-loop.lua:[0-9]+: instruction budget exceeded
