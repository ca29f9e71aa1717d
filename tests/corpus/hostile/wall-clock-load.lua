local s = ("\u{10348}"):rep(700000)
for i = 1, 1e9 do utf8.len(s) end
-- expect: rejected: wall-clock-load.lua:[0-9]+: (ran past its wall-clock bound of 1000 ms|instruction budget exceeded)
