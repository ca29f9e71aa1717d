rule "f" {
  when = function(c)
    _ENV.pcall = function(f) return true end
    pcall(function() while true do end end)
    while true do end
  end,
  act = signal { "SIGTERM" },
}
-- expect: disabled: when-env-rewrite.lua:[0-9]+: unknown name 'pcall'|when-env-rewrite.lua:[0-9]+: instruction budget exceeded
