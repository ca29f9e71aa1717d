getmetatable("").__index = function() while true do end end
local x = ("a"):upper()
-- expect: rejected: string-metatable-loop.lua:[0-9]+: instruction budget exceeded
