local t = setmetatable({}, { __len = function() return 1e15 end })
table.insert(t, 1, "x")
-- expect: rejected: table-insert-len.lua:2: table.insert and table.remove take no table with __len
