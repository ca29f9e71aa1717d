/* What a BPF component (a sensor, the traffic actuator) needs from the
 * kernel, in one description that the daemon's log line, `reflexd probe`
 * (cmd/probe.h) and docs/architecture.md all read. No project includes:
 * sense/ and act/ declare their needs without depending on the prober. */
#ifndef REFLEX_MODEL_NEEDS_H
#define REFLEX_MODEL_NEEDS_H

#include <stddef.h>
#include <linux/bpf.h>

struct bpf_object;

/* A helper, and a program type libbpf can probe it from (tracing programs
 * cannot be probed by type: libbpf needs a BTF target for those). */
struct kernel_helper {
	enum bpf_prog_type prog;
	enum bpf_func_id id;
	const char *name;
};
#define KERNEL_HELPER(type, fn) { BPF_PROG_TYPE_##type, BPF_FUNC_##fn, "bpf_" #fn }

#define KERNEL_NEEDS_MAX 12

/* Each list ends at its first zero entry. */
struct kernel_needs {
	const char *kernel;  /* the oldest kernel with all of it, and what sets that */
	const char *attach;  /* where its programs attach, for people */
	enum bpf_prog_type progs[KERNEL_NEEDS_MAX];
	enum bpf_map_type maps[KERNEL_NEEDS_MAX];
	struct kernel_helper helpers[KERNEL_NEEDS_MAX];
	const char *kfuncs[4];
	/* the ELF of each of its BPF objects (the skeletons' __elf_bytes) */
	const void *(*objects[3])(size_t *size);
	/* Optional: chooses, for try number `attempt` (0, 1, ...), which of an
	 * object's alternative programs load, as the component itself does;
	 * -ENOENT when there is no further choice. Without it every program
	 * of the object loads. */
	int (*configure)(struct bpf_object *obj, int attempt);
};

#endif
