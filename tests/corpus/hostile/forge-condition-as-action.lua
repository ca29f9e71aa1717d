rule "f" { when = deadlock { }, act = deadlock { } }
-- expect: rejected: forge-condition-as-action.lua:1: rule 'f': act must be an action like signal
