-- expect: no-when.lua:2: rule .x.: missing .when.
rule "x" { act = signal { "SIGKILL" } }
