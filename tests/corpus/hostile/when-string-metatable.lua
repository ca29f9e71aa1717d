rule "f" {
  when = function(c)
    getmetatable("").__index = function() while true do end end
    return c.comm:upper()
  end,
  act = signal { "SIGTERM" },
}
-- expect: disabled: when-string-metatable.lua:[0-9]+: instruction budget exceeded
