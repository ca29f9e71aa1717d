error("boom", 0)
-- expect: rejected: error-level-zero.lua: boom
