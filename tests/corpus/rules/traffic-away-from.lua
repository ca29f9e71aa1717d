-- expect: traffic-away-from.lua:2: rule .x.: traffic.shift: away_from must be a remote backend like "10.1.0.5:8080"
rule "x" { when = retransmits { }, act = traffic.shift { service = "api", away_from = "10.1.0.5" } }
