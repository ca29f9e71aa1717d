-- A process whose TCP connections keep retransmitting: the peers it talks
-- to, or the path to them, lose its packets. Sustained (30 s) above 5
-- retransmits a second and 2% of the segments it sends, that is no blip:
-- the sensor's evidence names the flows and peers (docs/retransmits.md).
--
-- Shipped in dry-run, as a report: every non-protected process is watched,
-- and the journal says which ones would have been restarted (SIGTERM, so
-- a supervisor starts them again and they reconnect). Before letting it
-- act, scope it with `where` to the services that recover that way.
rule "retransmits-report" {
  description = "report processes whose TCP retransmits stay above 5/s and 2% of segments",
  when     = retransmits { rate = "5/s", ratio = "2%" },
  hold     = "30s",
  act      = signal { "SIGTERM" },
  cooldown = "10m",
  budget   = { max = 3, per = "1h" },
  dry_run  = true,
}
