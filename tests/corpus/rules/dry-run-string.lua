-- expect: dry-run-string.lua:2: rule .x.: dry_run must be true or false
rule "x" { when = deadlock { }, act = signal { "SIGKILL" }, dry_run = "yes" }
