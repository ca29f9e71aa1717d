rule "f" { when = deadlock { }, act = function(c) while true do pcall(function() while true do end end) end end }
-- expect: disabled: act-pcall-loop.lua:[0-9]+: instruction budget exceeded
