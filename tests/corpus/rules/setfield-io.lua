-- expect: setfield-io.lua:2: unknown name .io.
io.write("x")
