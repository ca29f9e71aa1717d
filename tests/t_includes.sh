# The include check (tests/include_graph.py, run by `make check`): the tree
# passes, and each kind of break it is there to catch fails it, in a small
# fake tree and in a copy of the real one. No root, no build.
. "$(dirname "$0")/lib.sh"

CHECK="python3 $PWD/tests/include_graph.py"

# fake_tree DIR: lib <- model <- sense, decide -> act <- cmd, all in order.
fake_tree() {
	mkdir -p "$1"/lib "$1"/model "$1"/sense "$1"/decide "$1"/act "$1"/record "$1"/cmd
	echo '#include <stdint.h>' > "$1/lib/util.h"
	echo '#include "lib/util.h"' > "$1/model/condition.h"
	echo '#include "model/condition.h"' > "$1/sense/sensor.h"
	echo '#include "act/act.h"' > "$1/decide/rules.h"
	echo '#include "model/condition.h"' > "$1/act/act.h"
	echo '#include "model/condition.h"' > "$1/record/journal.h"
	printf '#include "sense/sensor.h"\n#include "decide/rules.h"\n#include "record/journal.h"\n' > "$1/cmd/main.c"
}

test_the_tree_passes() {
	out=$($CHECK . 2>&1) || fail "$out"
	echo "$out" | grep -q 'no cycle, no upward edge' || fail "$out"
	echo "$out" | grep -Eq '^  cmd +-> sense' || fail "no folder graph: $out"
}

test_fake_tree_in_order_passes() {
	fake_tree "$T/ok"
	out=$($CHECK "$T/ok" 2>&1) || fail "$out"
}

test_cycle_fails() {
	fake_tree "$T/cyc"
	echo '#include "record/journal.h"' >> "$T/cyc/sense/sensor.h"
	echo '#include "sense/sensor.h"' >> "$T/cyc/record/journal.h"
	out=$($CHECK "$T/cyc" 2>&1) && fail "a cycle passed: $out"
	echo "$out" | grep -q 'cycle between record, sense (shortest: record -> sense -> record)' || fail "$out"
	echo "$out" | grep -q 'record/journal.h includes sense/sensor.h' || fail "$out"
}

test_upward_edge_fails() {
	fake_tree "$T/up"
	echo '#include "model/condition.h"' >> "$T/up/lib/util.h"
	out=$($CHECK "$T/up" 2>&1) && fail "an upward edge passed: $out"
	echo "$out" | grep -q 'upward: lib/util.h includes model/condition.h (model above lib)' || fail "$out"
}

test_only_decide_includes_act() {
	fake_tree "$T/act"
	echo '#include "act/act.h"' >> "$T/act/sense/sensor.h"
	out=$($CHECK "$T/act" 2>&1) && fail "sense including act passed: $out"
	echo "$out" | grep -q "only decide includes act's interface: sense/sensor.h includes act/act.h" || fail "$out"
}

test_undeclared_folder_fails() {
	fake_tree "$T/new"
	mkdir -p "$T/new/core"
	echo '#include "lib/util.h"' > "$T/new/core/x.c"
	out=$($CHECK "$T/new" 2>&1) && fail "an undeclared folder passed: $out"
	echo "$out" | grep -q 'folder core/ is not in the declared order' || fail "$out"
}

# The memory sensor deciding its arming again, as it did before decide
# took that over: sense -> decide -> act -> sense.
test_real_tree_with_the_old_memory_include_fails() {
	mkdir -p "$T/real"
	cp -r lib model sense decide act record k8s cmd bpf "$T/real/"
	sed -i 's|#include "sense/memory.h"|&\n#include "decide/engine.h"|' "$T/real/sense/memory.c"
	out=$($CHECK "$T/real" 2>&1) && fail "the old include passed: $out"
	echo "$out" | grep -q 'shortest: act -> sense -> decide -> act' || fail "$out"
	echo "$out" | grep -q 'sense/memory.c includes decide/engine.h' || fail "$out"
}

run_tests
