/* What a Go program's ELF file says about it: its Go version, where the
 * runtime's goroutine create and exit functions are, where its table of
 * goroutines is and how a goroutine is laid out, and, through the runtime's
 * own function table, which function and line a code address is in. */
#ifndef REFLEX_SENSE_GO_ELF_H
#define REFLEX_SENSE_GO_ELF_H

#include <stdbool.h>
#include <stdint.h>

#define GO_ELF_VERSION_MAX 32
#define GO_SYM_CREATE "runtime.newproc1"
#define GO_SYM_EXIT "runtime.goexit1"

/* Where the runtime's goroutine table was found: its symbols, or the two
 * loads runtime.forEachGRace opens with (a stripped binary). */
enum go_table_from { GO_TABLE_NONE, GO_TABLE_SYMTAB, GO_TABLE_CODE };

struct go_elf {
	bool is_go;        /* a .go.buildinfo section or runtime.buildVersion */
	bool has_symtab;   /* not stripped (else the functions are looked up in
			    * the runtime's own table, .gopclntab) */
	char version[GO_ELF_VERSION_MAX];  /* "go1.19.8" */
	uint64_t off_create, off_exit;     /* file offsets, 0 when absent */
	/* every g the runtime ever made: runtime.allgptr (a **g) and
	 * runtime.allglen. Link-time addresses: a PIE's are relative to
	 * load_vaddr, the segment at file offset 0. */
	uint64_t addr_allglen, addr_allgptr;
	enum go_table_from table_from;
	bool pie;
	uint64_t load_vaddr;
	/* offsets in runtime.g, from the DWARF or else from the table of the
	 * Go releases known here, by the build's version */
	struct {
		bool known, from_dwarf;
		uint32_t status, gopc;
	} g_layout;
};

/* Where a code address is: function, source file and line. */
struct go_site {
	char function[128];
	char file[192];
	int line;          /* 0 when unknown */
};

/* Reads the ELF file open at fd into g: 0, or -errno when it is not a
 * readable ELF file. */
int go_elf_read(int fd, struct go_elf *g);

/* Finds the function, file and line of pc (a link-time address) in the Go
 * binary open at fd, through its .gopclntab, as the runtime's tracebacks
 * do. 0, -ENOENT when no function holds pc, or -errno. */
int go_elf_symbolize(int fd, uint64_t pc, struct go_site *site);

#endif
