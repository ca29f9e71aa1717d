local later = rule "late"
rule "f" {
  when = deadlock { },
  act = function(c) later { when = deadlock { }, act = signal { "SIGKILL" } } end,
}
-- expect: disabled: act-rule-body-later.lua:[0-9]+: rule \"late\" \{ ... \} runs only while its file loads
