-- expect: traffic-service-nul.lua:2: rule .x.: traffic.shift: service must be the name of a --service, like "web"$
rule "x" { when = deadlock { }, act = traffic.shift { service = "web\0evil" } }
