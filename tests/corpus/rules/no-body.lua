-- expect: no-body.lua:2: rule .x.: expected a table after the name
rule "x" "y"
