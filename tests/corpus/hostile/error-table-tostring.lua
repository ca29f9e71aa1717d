error(setmetatable({}, { __tostring = function() while true do end end }))
-- expect: rejected: error-table-tostring.lua: \(error object is a table value\)
