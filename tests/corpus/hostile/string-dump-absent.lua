local b = string.dump(function() end)
-- expect: rejected: string-dump-absent.lua:1: attempt to call a nil value \(field 'dump'\)
