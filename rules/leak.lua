-- Memory that keeps growing, with no plateau, at 4 MiB/s or more for 30 s
-- (the sensor judges growth over --leak-window, 20 s by default; hold
-- counts from when the growth began). Left alone it ends in the OOM
-- killer, at a time nobody chose. Ask the process to exit (SIGTERM) so
-- its supervisor restarts it cleanly, and kill it if it has not gone 10 s
-- later. The condition's evidence names the allocation sites when
-- attribution ran (docs/leak.md).
--
-- Shipped in dry-run, like every shipped rule.
rule "leak-restart" {
  description = "restart a process whose memory grows 4 MiB/s or more without a plateau",
  when     = leak { rate = "4MiB/s" },
  hold     = "30s",
  act      = signal { "SIGTERM", followup = "SIGKILL", grace = "10s" },
  cooldown = "10m",
  dry_run  = true,
}
