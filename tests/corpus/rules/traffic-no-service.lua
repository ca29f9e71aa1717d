-- expect: traffic-no-service.lua:2: rule .x.: traffic.shift: which service\? e.g. traffic.shift \{ service = "web" \}
rule "x" { when = deadlock { }, act = traffic.shift { } }
