local s = ("ab"):rep(1000)
for w in s:gmatch(".*.*.*.*c") do end
-- expect: rejected: pattern-gmatch.lua:2: pattern of 4 repetitions is too costly
