rule "f" { when = deadlock { }, act = function(c) end }
-- expect: disabled: act-returns-nothing.lua:1: act function returned nil, not an action
