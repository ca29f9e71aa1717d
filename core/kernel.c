/* What the running kernel's BTF describes (see core/kernel.h). */
#include <errno.h>
#include <bpf/btf.h>

#include "core/kernel.h"

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
