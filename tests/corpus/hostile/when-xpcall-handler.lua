rule "f" {
  when = function(c)
    while true do xpcall(function() while true do end end, function() while true do end end) end
  end,
  act = signal { "SIGTERM" },
}
-- expect: disabled: when-xpcall-handler.lua:[0-9]+: instruction budget exceeded
