rule "f" {
  when = deadlock { }, act = signal { "SIGTERM" }, verify = { within = "5s" },
  escalate = setmetatable({}, { __len = function() return 3 end, __index = function() error("x") end }),
}
-- expect: rejected: forge-escalate-len.lua:[0-9]+: rule 'f': escalate takes 1 to 3 actions
