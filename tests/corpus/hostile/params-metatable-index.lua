local p = setmetatable({}, { __index = function() return "SIGTERM" end })
rule "f" { when = deadlock { }, act = signal(p) }
-- expect: rejected: params-metatable-index.lua:2: rule 'f': signal: which signal
