local s = ("a"):rep(40)
local found = s:find(("a*"):rep(30) .. "b")
-- expect: rejected: pattern-backtracking.lua:2: pattern of 30 repetitions is too costly
