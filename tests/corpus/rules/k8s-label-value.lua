-- expect: k8s-label-value.lua:2: rule .x.: k8s.label: quarantine must be a string value$
rule "x" { when = deadlock { }, act = k8s.label { quarantine = true } }
