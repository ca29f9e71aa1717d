while true do
  pcall(function() while true do end end)
end
-- expect: rejected: pcall-swallows-budget.lua:[0-9]+: instruction budget exceeded
