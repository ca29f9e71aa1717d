load("while true do end")()
-- expect: rejected: load-absent.lua:1: unknown name 'load'
