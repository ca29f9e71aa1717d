local function f() pcall(f) pcall(f) end
while true do f() end
-- expect: rejected: pcall-nested-recursion.lua:[0-9]+: (instruction budget exceeded|ran past its wall-clock bound of 1000 ms)
