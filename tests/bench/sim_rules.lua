-- 50 rules for the simulation benchmark: half decide at once (hold 0),
-- half want the condition held longer than it ever lasts.
for i = 0, 49 do
  if i % 2 == 0 then
    rule ("now-" .. i) { when = deadlock { }, where = { comm = "svc" .. i .. "-*" }, act = signal { "SIGKILL" }, cooldown = "10m" }
  else
    rule ("held-" .. i) { when = deadlock { }, where = { comm = "svc" .. i .. "-*", exe = "/srv/*" }, hold = "2s", act = signal { "SIGTERM" } }
  end
end
