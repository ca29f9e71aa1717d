while true do
  xpcall(function() while true do end end, function() while true do end end)
end
-- expect: rejected: xpcall-handler-loops.lua:[0-9]+: instruction budget exceeded
