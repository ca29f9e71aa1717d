-- Every thread of a process asleep on futexes for a long time, with no
-- lock cycle to explain it: a lost wakeup, or a lock whose owner is stuck
-- in the same process. It will not recover by itself. Take a core dump
-- (SIGABRT) to find out why, then make sure it is gone.
--
-- Shipped in dry-run, like every shipped rule.
rule "stall-kill" {
  description = "kill a process whose threads have all been blocked for 30s",
  when     = stall { },
  hold     = "30s",
  act      = signal { "SIGABRT", followup = "SIGKILL", grace = "5s" },
  cooldown = "5m",
  dry_run  = true,
}
