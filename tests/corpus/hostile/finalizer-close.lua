do
  local x <close> = setmetatable({}, { __close = function() while true do end end })
end
-- expect: rejected: finalizer-close.lua:2: setmetatable: __gc and __close are not allowed in rules
