rule "f" { when = function(c) error(nil) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-error-nil.lua: \(error object is a nil value\)
