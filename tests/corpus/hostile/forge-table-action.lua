rule "f" { when = deadlock { }, act = setmetatable({ name = "signal", params = { "SIGTERM" } }, { __metatable = "reflex.action" }) }
-- expect: rejected: forge-table-action.lua:1: rule 'f': act must be an action like signal
