-- expect: runtime-error.lua:2: attempt to perform arithmetic on a nil value \(global .x.\)|runtime-error.lua:2: unknown name .x.
local y = x + 1
