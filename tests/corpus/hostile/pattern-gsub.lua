local s = ("a"):rep(2000)
local r = s:gsub("a-a-a-b", "x")
-- expect: rejected: pattern-gsub.lua:2: pattern of 3 repetitions is too costly
