/* libFuzzer target: the Go binary reader (symbols, .gopclntab, DWARF, the
 * code it reads the runtime's table from, and the symbolizer) on
 * arbitrary bytes. The daemon reads every binary that runs on the host,
 * as root, so no file may crash, leak or hang it. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sense/go_elf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("reflexd-fuzz-go-elf", MFD_CLOEXEC);
	struct go_elf g;
	struct go_site site;

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	(void)go_elf_read(fd, &g);
	/* what it found must fit what it was given */
	if ((g.off_create && g.off_create >= size) || (g.off_exit && g.off_exit >= size))
		abort();
	/* an address in the text of the seeds, and one from the input */
	(void)go_elf_symbolize(fd, 0x434f05, &site);
	if (size >= 8)
		(void)go_elf_symbolize(fd, *(const uint64_t *)(const void *)data, &site);
	close(fd);
	return 0;
}
