# reflexd: `make` builds ./reflexd, `make test` runs every test,
# `make bench` prints the benchmark table, `make run` starts the daemon
# on this host with the shipped rules in dry-run.

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
BUILD   := build
VERSION := 0.1.0

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
PKGS := libbpf lua5.4 sqlite3 libelf libdw zlib libcurl libprotobuf-c yaml-0.1 libcrypto

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter \
	   -Werror=implicit-function-declaration -D_GNU_SOURCE \
	   -DREFLEX_VERSION='"$(VERSION)"' -I. -I$(BUILD) -I$(BUILD)/proto \
	   $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -lm

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -I$(BUILD) -Ibpf

SENSORS := deadlock leak allocs goroutines memory retransmits rss
ACTUATORS := traffic
SRCS    := $(wildcard lib/*.c model/*.c sense/*.c decide/*.c act/*.c record/*.c k8s/*.c cmd/*.c)
OBJS    := $(SRCS:%.c=$(BUILD)/%.o)
SKELS   := $(SENSORS:%=$(BUILD)/%.skel.h) $(ACTUATORS:%=$(BUILD)/%.skel.h)
# OTLP messages (proto/, written from the specification), C by protoc-c
PROTOS  := $(shell find proto -name '*.proto')
PB_SRCS := $(PROTOS:proto/%.proto=$(BUILD)/proto/%.pb-c.c)
PB_HDRS := $(PB_SRCS:.c=.h)
OBJS    += $(PB_SRCS:.c=.o)
WORKLOADS := $(patsubst tests/workloads/%.c,$(BUILD)/workloads/%,$(wildcard tests/workloads/*.c))

.PHONY: all deps workloads fuzz units check test test-kernels bench scale run image clean
.SECONDARY:
all: deps reflexd

deps:
	@sh deploy/deps.sh

reflexd: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# CO-RE: the BPF objects compile against this kernel's BTF; libbpf relocates
# them on whatever kernel loads them (docs/build.md says why it is generated).
$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/%.h bpf/core_fixes.bpf.h bpf/drops.bpf.h bpf/drops.h bpf/leak_procs.bpf.h $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# the shared rss_stat program holds the leak sensor's and the reflex's maps
$(BUILD)/rss.bpf.o: bpf/leak.h bpf/memory.h

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/proto
	protoc-c --c_out=$(BUILD)/proto -Iproto $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c $(PB_HDRS)
	$(CC) $(CFLAGS) -c $< -o $@

# Each object depends on what it includes (the compiler's -MMD list): its
# own skeleton and headers, not every one. The skeletons and protobuf
# headers are made first (order-only), since which object includes which
# is known only once it has compiled.
$(BUILD)/%.o: %.c | $(SKELS) $(PB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(OBJS:.o=.d)

$(BUILD)/workloads/%: tests/workloads/%.c $(wildcard tests/workloads/*.h)
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -pthread -o $@ $<

# the event storm's short process (tests/bench/b_bighost.sh): static and
# without libc, so that starting it costs the exec, not the loader
$(BUILD)/workloads/nop: tests/workloads/nop.c
	@mkdir -p $(@D)
	$(CC) -O2 -static -nostdlib -ffreestanding -Wall -Wextra -o $@ $<

# the deadlock and stall workloads as users build programs: with frame
# pointers, without, and without debug info (symbols kept, as strip -g does)
LOCK_WORKLOADS := $(foreach w,deadlock stall,$(foreach v,fp nofp nodebug,$(BUILD)/workloads/$(w)-$(v)))
$(BUILD)/workloads/%-fp: tests/workloads/%.c $(wildcard tests/workloads/*.h)
	@mkdir -p $(@D)
	$(CC) -O2 -g -fno-omit-frame-pointer -Wall -Wextra -pthread -o $@ $<
$(BUILD)/workloads/%-nofp: tests/workloads/%.c $(wildcard tests/workloads/*.h)
	@mkdir -p $(@D)
	$(CC) -O2 -g -fomit-frame-pointer -Wall -Wextra -pthread -o $@ $<
$(BUILD)/workloads/%-nodebug: tests/workloads/%.c $(wildcard tests/workloads/*.h)
	@mkdir -p $(@D)
	$(CC) -O2 -fomit-frame-pointer -Wall -Wextra -pthread -o $@ $< && strip --strip-debug $@

# tests/k8s: the cgroup path table's driver
$(BUILD)/tests/cgroup_table: tests/k8s/cgroup_table.c sense/identity.c lib/util.c lib/text.c sense/identity.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tests/k8s/cgroup_table.c sense/identity.c lib/util.c lib/text.c -lm

workloads: $(WORKLOADS) $(LOCK_WORKLOADS) $(BUILD)/tests/cgroup_table $(BUILD)/tests/k8s_fleet

# the daemon's objects, less main: what test and bench drivers link against
LIB_OBJS := $(filter-out $(BUILD)/cmd/main.o,$(OBJS))

$(BUILD)/bench/engine_bench: tests/bench/engine_bench.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# tests/bench/b_retransmits.sh: a loaded program attached K more times
$(BUILD)/bench/amplify: tests/bench/amplify.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -o $@ $< -lbpf

# tests/scale: many real Kubernetes clients on one loop (t_k8s.sh, make scale)
$(BUILD)/tests/k8s_fleet: tests/scale/fleet.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# the fleet simulation against the fixture API server (docs/scale.md)
scale: all $(BUILD)/tests/k8s_fleet
	@bash tests/scale/fleet.sh

# unit drivers for pure code (tests/unit), no BPF
$(BUILD)/unit/leak_trend: tests/unit/leak_trend.c sense/leak_trend.c sense/leak_trend.h lib/trend.c lib/trend.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tests/unit/leak_trend.c sense/leak_trend.c lib/trend.c -lm

# tests/unit/probe_capture: a refused object's reason, as probe_load captures it
$(BUILD)/unit/refused.bpf.o: tests/unit/refused.bpf.c $(BUILD)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/unit/probe_capture: tests/unit/probe_capture.c $(LIB_OBJS) $(BUILD)/unit/refused.bpf.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tests/unit/probe_capture.c $(LIB_OBJS) $(LDLIBS)

$(BUILD)/unit/metrics: tests/unit/metrics.c lib/metrics.c lib/metrics.h lib/util.c lib/text.c lib/log.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tests/unit/metrics.c lib/metrics.c lib/util.c lib/text.c lib/log.c -lev -lbpf

$(BUILD)/unit/symbols: tests/unit/symbols.c sense/symbols.c sense/symbols.h lib/util.c lib/text.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tests/unit/symbols.c sense/symbols.c lib/util.c lib/text.c -ldw -lelf -lm

$(BUILD)/unit/proctable: tests/unit/proctable.c lib/proctable.c lib/proctable.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tests/unit/proctable.c lib/proctable.c

$(BUILD)/unit/text: tests/unit/text.c lib/text.c lib/util.c lib/text.h lib/util.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tests/unit/text.c lib/text.c lib/util.c -lm

# the decision's field table against a real journal
DECISION_FIELDS_SRCS := tests/unit/decision_fields.c model/decision_fields.c model/decision.c model/condition.c \
	record/journal.c lib/log.c lib/util.c lib/text.c
$(BUILD)/unit/decision_fields: $(DECISION_FIELDS_SRCS) model/decision_fields.h model/decision.h record/journal.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(DECISION_FIELDS_SRCS) -lsqlite3 -lbpf -lm

units: $(BUILD)/unit/decision_fields $(BUILD)/unit/symbols $(BUILD)/unit/leak_trend $(BUILD)/unit/probe_capture $(BUILD)/unit/metrics $(BUILD)/unit/text \
	$(BUILD)/unit/proctable

# Without root, in seconds once built: the include check (folders and the
# dependency rule, docs/architecture.md) and its own test, the unit
# drivers, and the fuzzers' corpora replayed once.
check: $(BUILD)/unit/leak_trend $(BUILD)/unit/text $(BUILD)/unit/proctable $(BUILD)/unit/decision_fields \
	$(BUILD)/fuzz/fuzz_rules $(BUILD)/fuzz/fuzz_engine \
	$(BUILD)/fuzz/fuzz_trace
	@python3 tests/include_graph.py
	@bash tests/t_includes.sh
	@$(BUILD)/unit/leak_trend
	@$(BUILD)/unit/proctable
	@$(BUILD)/unit/decision_fields
	@ONLY=escape_matches_python_strict_decoder bash tests/t_text.sh
	@$(BUILD)/fuzz/fuzz_rules tests/corpus/rules/*.lua tests/corpus/hostile/*.lua rules/*.lua 2>$(BUILD)/fuzz/replay.log \
		|| { tail -20 $(BUILD)/fuzz/replay.log; exit 1; }
	@$(BUILD)/fuzz/fuzz_engine tests/corpus/rules/*.lua rules/*.lua 2>$(BUILD)/fuzz/replay.log \
		|| { tail -20 $(BUILD)/fuzz/replay.log; exit 1; }
	@$(BUILD)/fuzz/fuzz_trace tests/corpus/traces/* 2>$(BUILD)/fuzz/replay.log \
		|| { tail -20 $(BUILD)/fuzz/replay.log; exit 1; }
	@echo "ok - the fuzz corpora replayed"

test: all workloads fuzz units
	@sh tests/run.sh

# the live tests inside Debian's stock 6.1 and 6.12 kernels under qemu
# (tests/kernels/, docs/kernels.md); about 12 minutes
test-kernels: all workloads
	@bash tests/kernels/matrix.sh

bench: all workloads $(BUILD)/bench/engine_bench $(BUILD)/bench/amplify
	@sh deploy/deps.sh bench
	@bash tests/bench/run.sh

run: all
	sh deploy/run-here.sh

# the container image, built here from Debian's archive (docs/deploy.md)
image: deps
	sh deploy/image.sh

clean:
	rm -rf $(BUILD) reflexd

# libFuzzer targets (tests/fuzz), built with clang and AddressSanitizer.
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	       -std=gnu11 -D_GNU_SOURCE -I. -I$(BUILD) -DREFLEX_VERSION='"$(VERSION)"'
# the rule fuzzers: the rule loader and the engine, driven with a trace
# (tests/fuzz/drive.h), and what the rule language knows of act/ (the
# actions' declarations, act/actions.c), none of the actuators' runtimes,
# the journal or the Kubernetes client
FUZZ_RULES_SRCS := tests/fuzz/fuzz_rules.c $(wildcard decide/rules*.c) decide/params.c decide/sandbox.c \
	decide/engine.c decide/protect.c act/actions.c act/traffic_backends.c record/trace.c \
	model/condition.c model/decision.c lib/util.c lib/text.c lib/log.c lib/json.c lib/sha256.c
FUZZ_RULES_LIBS = $(shell pkg-config --libs lua5.4 libcrypto libbpf) -lm
FUZZ_ENGINE_SRCS := tests/fuzz/fuzz_engine.c $(filter-out tests/fuzz/fuzz_rules.c,$(FUZZ_RULES_SRCS))
# a rule file's load bounded by 1/50 of the daemon's: runaway seeds end sooner
FUZZ_RULES_CFLAGS := $(shell pkg-config --cflags lua5.4) -DREFLEX_SANDBOX_INSTRUCTIONS=200000L \
	-DREFLEX_SANDBOX_LOAD_WALL_NS=40000000ull
FUZZ_TRACE_SRCS := tests/fuzz/fuzz_trace.c record/trace.c model/condition.c lib/util.c lib/text.c
FUZZ_GLOB_SRCS := tests/fuzz/fuzz_glob.c lib/util.c lib/text.c
FUZZ_JSON_SRCS := tests/fuzz/fuzz_json.c lib/json.c
FUZZ_TIME_SRCS := tests/fuzz/fuzz_time.c lib/util.c lib/text.c
FUZZ_INT_SRCS := tests/fuzz/fuzz_int.c lib/util.c lib/text.c
FUZZ_KUBECONFIG_SRCS := tests/fuzz/fuzz_kubeconfig.c k8s/kubeconfig.c lib/json.c lib/util.c lib/text.c
FUZZ_GO_ELF_SRCS := tests/fuzz/fuzz_go_elf.c sense/go_elf.c lib/util.c lib/text.c

$(BUILD)/fuzz/fuzz_rules: $(FUZZ_RULES_SRCS) $(wildcard */*.h) tests/fuzz/drive.h
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_RULES_CFLAGS) -o $@ $(FUZZ_RULES_SRCS) $(FUZZ_RULES_LIBS)

$(BUILD)/fuzz/fuzz_engine: $(FUZZ_ENGINE_SRCS) $(wildcard */*.h) tests/fuzz/drive.h
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_RULES_CFLAGS) -o $@ $(FUZZ_ENGINE_SRCS) $(FUZZ_RULES_LIBS)

$(BUILD)/fuzz/fuzz_trace: $(FUZZ_TRACE_SRCS) $(wildcard */*.h)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(FUZZ_TRACE_SRCS)

$(BUILD)/fuzz/fuzz_glob: $(FUZZ_GLOB_SRCS) $(wildcard */*.h)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(FUZZ_GLOB_SRCS)

$(BUILD)/fuzz/fuzz_time: $(FUZZ_TIME_SRCS) lib/util.h
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(FUZZ_TIME_SRCS)

$(BUILD)/fuzz/fuzz_int: $(FUZZ_INT_SRCS) lib/util.h
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(FUZZ_INT_SRCS)

$(BUILD)/fuzz/fuzz_json: $(FUZZ_JSON_SRCS) lib/json.h
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(FUZZ_JSON_SRCS)

$(BUILD)/fuzz/fuzz_kubeconfig: $(FUZZ_KUBECONFIG_SRCS) k8s/kubeconfig.h lib/json.h lib/util.h
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(FUZZ_KUBECONFIG_SRCS) $(shell pkg-config --libs yaml-0.1 libcrypto)

$(BUILD)/fuzz/fuzz_go_elf: $(FUZZ_GO_ELF_SRCS) $(wildcard */*.h)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(FUZZ_GO_ELF_SRCS) -lelf

fuzz: $(BUILD)/fuzz/fuzz_rules $(BUILD)/fuzz/fuzz_engine $(BUILD)/fuzz/fuzz_trace $(BUILD)/fuzz/fuzz_glob $(BUILD)/fuzz/fuzz_json \
	$(BUILD)/fuzz/fuzz_kubeconfig $(BUILD)/fuzz/fuzz_go_elf $(BUILD)/fuzz/fuzz_time $(BUILD)/fuzz/fuzz_int
