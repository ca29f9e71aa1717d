local t = setmetatable({}, { __len = function() return 1e15 end })
table.remove(t, 1)
-- expect: rejected: table-remove-len.lua:2: table.insert and table.remove take no table with __len
