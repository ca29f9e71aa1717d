local s = "x"
for i = 1, 40 do s = s .. s end
-- expect: rejected: concat-doubling.lua: memory limit exceeded
