-- expect: bad-escape.lua:2: invalid escape sequence
local s = "\q"
