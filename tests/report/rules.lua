-- Rules for tests/t_audit_report.sh: a ladder (act, verify, escalate),
-- a traffic shift and its undo, a leak rule, a dry-run rule.
rule "deadlock-ladder" {
  when     = deadlock { },
  act      = signal { "SIGQUIT" },
  verify   = { within = "2s" },
  escalate = { signal { "SIGKILL" } },
}
rule "stall-shift" {
  when     = stall { },
  act      = traffic.shift { service = "web", drain = true },
  settle   = "1s",
}
rule "leak-restart" {
  when     = leak { },
  act      = signal { "SIGTERM" },
  dry_run  = true,
}
rule "goroutines-watch" {
  when     = goroutines { },
  act      = signal { "SIGQUIT" },
  dry_run  = true,
}
