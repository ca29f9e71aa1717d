#ifndef REFLEX_LIB_KERNEL_H
#define REFLEX_LIB_KERNEL_H

/* 1 when the running kernel's BTF (/sys/kernel/btf/vmlinux) has a type
 * of this name and BTF kind (BTF_KIND_TYPEDEF, BTF_KIND_FUNC...), 0 when
 * it has not, -errno when that BTF cannot be read. How a loader chooses
 * between a program and its fallback: a tracepoint is there when its
 * btf_trace_<name> typedef is, a kfunc when its FUNC is. */
int kernel_btf_has(const char *name, int kind);

/* How many arguments the running kernel's tracepoint `name` passes a
 * tp_btf program (its prototype has grown on some kernels), or -errno:
 * -ENOENT when there is no such tracepoint. */
int kernel_tp_args(const char *name);

#endif
