/* What the running kernel's BTF describes (see lib/kernel.h). */
#include <errno.h>
#include <stdio.h>
#include <bpf/btf.h>

#include "lib/kernel.h"

int kernel_btf_has(const char *name, int kind)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int rc;

	if (!btf)
		return -errno;
	rc = btf__find_by_name_kind(btf, name, kind) > 0;
	btf__free(btf);
	return rc;
}

/* btf_trace_<name> is a typedef of a pointer to the probe's prototype,
 * whose first parameter is the probe's own data, not an argument. */
int kernel_tp_args(const char *name)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	char typedef_name[128];
	int id, rc = -ENOENT;

	if (!btf)
		return -errno;
	snprintf(typedef_name, sizeof(typedef_name), "btf_trace_%s", name);
	id = btf__find_by_name_kind(btf, typedef_name, BTF_KIND_TYPEDEF);
	if (id <= 0)
		goto cleanup;
	t = btf__type_by_id(btf, btf__type_by_id(btf, id)->type);
	if (!t || !btf_is_ptr(t))
		goto cleanup;
	t = btf__type_by_id(btf, t->type);
	if (t && btf_is_func_proto(t) && btf_vlen(t) > 0)
		rc = btf_vlen(t) - 1;
cleanup:
	btf__free(btf);
	return rc;
}
