-- expect: when-string.lua:3: rule .x.: when must be a condition like deadlock \{ \} or a function, not string
rule "x" {
  when = "deadlock",
  act = signal { "SIGKILL" },
}
