-- expect: k8s-positional.lua:2: rule .x.: k8s.scale: parameters are named \(known: replicas\)$
rule "x" { when = deadlock { }, act = k8s.scale { 3 } }
