rule "f" {
  when = function(c)
    local v = deadlock { }
    local ok = pcall(function() v.kind = "x" end)
    while true do end
  end,
  act = signal { "SIGTERM" },
}
-- expect: disabled: when-returns-userdata.lua:[0-9]+: instruction budget exceeded
