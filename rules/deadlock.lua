-- A process whose threads wait on each other's locks will never recover on
-- its own. Ask it for a core dump (SIGABRT) so the bug can be found, and
-- kill it if it has not died a few seconds later.
--
-- Shipped in dry-run: it records what it would do until you set
-- dry_run = false (and run reflexd without --dry-run).
rule "deadlock-kill" {
  description = "kill a process whose threads are deadlocked on locks",
  when     = deadlock { },
  hold     = "2s",
  act      = signal { "SIGABRT", followup = "SIGKILL", grace = "5s" },
  cooldown = "1m",
  dry_run  = true,
}
