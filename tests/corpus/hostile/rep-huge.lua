local s = ("x"):rep(1 << 30)
-- expect: rejected: rep-huge.lua:1: string.rep: memory limit exceeded
