-- expect: shadowed.lua:3: rule .b. can never act: rule .a. \(.*shadowed.lua:2\) matches everything it matches
rule "a" { when = deadlock { }, hold = "1s", act = signal { "SIGKILL" } }
rule "b" { when = deadlock { }, where = { comm = "w*" }, hold = "2s", act = signal { "SIGTERM" } }
