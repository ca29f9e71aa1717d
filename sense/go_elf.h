/* What a Go program's ELF file says about it: its Go version, and where
 * the runtime's goroutine create and exit functions are. */
#ifndef REFLEX_SENSE_GO_ELF_H
#define REFLEX_SENSE_GO_ELF_H

#include <stdbool.h>
#include <stdint.h>

#define GO_ELF_VERSION_MAX 32
#define GO_SYM_CREATE "runtime.newproc1"
#define GO_SYM_EXIT "runtime.goexit1"

struct go_elf {
	bool is_go;        /* a .go.buildinfo section or runtime.buildVersion */
	bool has_symtab;   /* not stripped */
	char version[GO_ELF_VERSION_MAX];  /* "go1.19.8" */
	uint64_t off_create, off_exit;     /* file offsets, 0 when absent */
};

/* Reads the ELF file open at fd into g: 0, or -errno when it is not a
 * readable ELF file. */
int go_elf_read(int fd, struct go_elf *g);

#endif
