rule "f" { when = deadlock { }, act = function(c) return deadlock { } end }
-- expect: disabled: act-returns-condition.lua:1: act function returned userdata, not an action
