-- expect: traffic-typo.lua:2: unknown name 'shfit'
rule "x" { when = deadlock { }, act = traffic.shfit { service = "web" } }
