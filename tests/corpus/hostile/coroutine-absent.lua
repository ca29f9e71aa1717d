local co = coroutine.wrap(function() while true do coroutine.yield() end end)
-- expect: rejected: coroutine-absent.lua:1: unknown name 'coroutine'
