local keep = {}
while true do
  pcall(function() local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(1000) .. i end end)
  keep[#keep + 1] = {}
end
-- expect: rejected: pcall-swallows-memory.lua: memory limit exceeded
