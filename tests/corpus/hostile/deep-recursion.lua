local function f(n) return 1 + f(n + 1) end
f(1)
-- expect: rejected: deep-recursion.lua(:[0-9]+)?: (stack overflow|memory limit exceeded)
