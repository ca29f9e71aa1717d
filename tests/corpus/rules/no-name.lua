-- expect: no-name.lua:2: a rule needs a name: rule "name" \{ ... \}
rule { when = deadlock { }, act = signal { "SIGKILL" } }
