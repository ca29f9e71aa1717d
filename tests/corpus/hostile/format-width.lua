local s = string.format("%99999999d", 1)
-- expect: rejected: format-width.lua:1: invalid conversion
