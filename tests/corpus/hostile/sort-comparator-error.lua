local t = {} for i = 1, 100 do t[i] = i end
table.sort(t, function(a, b) error("x", 0) end)
-- expect: rejected: sort-comparator-error.lua:2: (invalid order function for sorting|x)
