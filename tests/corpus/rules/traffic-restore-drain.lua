-- expect: traffic-restore-drain.lua:2: rule .x.: traffic.restore: unknown parameter .drain. \(known: service, away_from\)
rule "x" { when = deadlock { }, act = traffic.restore { service = "web", drain = true } }
