-- A Go process whose goroutines keep growing (100 a second or more, for
-- the sensor's whole window and then hold) is leaking them: each one holds
-- its stack and whatever it references, and the process will run out of
-- memory. SIGQUIT makes the Go runtime print every goroutine's stack (the
-- leak's call site is the one repeated thousands of times) and exit, for
-- its supervisor to restart it.
--
-- Shipped in dry-run, like every shipped rule.
rule "goroutine-leak" {
  description = "dump and restart a Go process leaking goroutines",
  when     = goroutines { rate = "100/s" },
  hold     = "10s",
  act      = signal { "SIGQUIT" },
  cooldown = "10m",
  dry_run  = true,
}
