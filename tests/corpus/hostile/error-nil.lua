error(nil)
-- expect: rejected: error-nil.lua: \(error object is a nil value\)
