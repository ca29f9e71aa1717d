rule "f" {
  when = deadlock { }, act = signal { "SIGTERM" },
  where = { comm = setmetatable({}, { __len = function() rule "inner" { when = deadlock { }, act = signal { "SIGTERM" } } return 1 end }) },
}
-- expect: rejected: forge-where-len-reenters.lua:[0-9]+: rule 'f': where.comm must be a glob
