-- expect: k8s-replicas-bound.lua:2: rule .x.: k8s.scale: replicas must be an integer from 0 to 10000$
rule "x" { when = deadlock { }, act = k8s.scale { replicas = 10001 } }
