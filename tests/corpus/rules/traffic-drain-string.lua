-- expect: traffic-drain-string.lua:2: rule .x.: traffic.shift: drain must be true or false, not string$
rule "x" { when = deadlock { }, act = traffic.shift { service = "web", drain = "yes" } }
