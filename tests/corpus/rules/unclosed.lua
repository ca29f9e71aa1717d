-- expect: unclosed.lua:3: .\}. expected \(to close .\{. at line 2\) near <eof>
rule "x" { when = deadlock { }, act = signal { "SIGKILL" }
