rule "f" { when = deadlock { }, act = function(c) return { name = "signal", params = { "SIGKILL" } } end }
-- expect: disabled: act-returns-table.lua:1: act function returned table, not an action
