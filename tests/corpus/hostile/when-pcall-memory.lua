rule "f" {
  when = function(c)
    while true do pcall(function() local t = {} for i = 1, 1e9 do t[i] = {} end end) end
  end,
  act = signal { "SIGTERM" },
}
-- expect: disabled: when-pcall-memory.lua: memory limit exceeded
