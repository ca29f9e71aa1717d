do
  local x <close> = {}
end
-- expect: rejected: close-without-metamethod.lua:2: variable 'x' got a non-closable value
