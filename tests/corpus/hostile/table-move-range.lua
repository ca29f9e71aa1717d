table.move({}, 1, 1e15, 2)
-- expect: rejected: table-move-range.lua:1: table.move: more than 4194304 elements
