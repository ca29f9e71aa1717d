rule "f" { when = function(c) return coroutine.yield() end, act = signal { "SIGTERM" } }
-- expect: disabled: when-coroutine.lua:[0-9]+: unknown name 'coroutine'
