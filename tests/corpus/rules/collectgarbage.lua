-- expect: collectgarbage.lua:2: unknown name .collectgarbage.
collectgarbage("stop")
