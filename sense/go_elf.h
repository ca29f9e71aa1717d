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
	bool has_symtab;   /* not stripped (else the functions are looked up in
			    * the runtime's own table, .gopclntab) */
	char version[GO_ELF_VERSION_MAX];  /* "go1.19.8" */
	uint64_t off_create, off_exit;     /* file offsets, 0 when absent */
	/* what the live goroutine count is made of: every g ever allocated
	 * (runtime.allglen) less the dead ones on the scheduler's and each P's
	 * free list (runtime.sched, runtime.allp). Link-time addresses: a
	 * PIE's are relative to load_vaddr, the segment at file offset 0.
	 * From the DWARF, the offsets of sched.gFree.n and p.gFree.n. */
	uint64_t addr_allglen, addr_sched, addr_allp;
	bool pie;
	uint64_t load_vaddr;
	struct {
		bool known;
		uint32_t sched_gfree_n, p_gfree_n;
	} layout;
};

/* Reads the ELF file open at fd into g: 0, or -errno when it is not a
 * readable ELF file. */
int go_elf_read(int fd, struct go_elf *g);

#endif
