local s = string.rep("", 1e15)
-- expect: rejected: rep-empty-forever.lua:1: string.rep: memory limit exceeded
