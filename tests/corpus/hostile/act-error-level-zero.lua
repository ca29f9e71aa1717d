rule "f" { when = deadlock { }, act = function(c) error("from the act function", 0) end }
-- expect: disabled: act-error-level-zero.lua: from the act function
