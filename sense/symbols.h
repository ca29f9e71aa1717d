/* Addresses in another process, as names: /proc/<pid>/maps says which
 * object is mapped there, the object's ELF symbol tables (libelf) say
 * which function. Objects are opened through /proc/<pid>/map_files (the
 * file mapped, even when replaced on disk since) or /proc/<pid>/root, so a
 * process in a container resolves against its own files. */
#ifndef REFLEX_SENSE_SYMBOLS_H
#define REFLEX_SENSE_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct symbols;

struct mapping {
	uint64_t start, end, offset;
	char path[256];   /* as the process sees it; empty when anonymous */
};

/* Calls fn on each file-backed mapping of pid, until it returns non-zero:
 * that value, 0 after the last one, or -errno. */
int symbols_each_mapping(pid_t pid, int (*fn)(const struct mapping *m, void *ctx), void *ctx);

/* Writes "function+0xoff" for addr in pid into name and the object's path
 * into object: 0, or -ENOENT when no mapping or no symbol covers it (then
 * name holds the address in hex). */
int symbols_resolve(pid_t pid, uint64_t addr, char *name, size_t size, char *object,
		    size_t osize);

/* Whether the ELF file at path (a path in this mount namespace) defines
 * the function sym in its dynamic symbol table. */
bool symbols_defines(const char *path, const char *sym);

/* A thread's user registers as its syscall saved them, in DWARF order. */
struct user_regs {
	uint64_t pc;
	uint64_t regs[32];
	unsigned nregs;
};

/* One frame of a stack, as a person reads it. */
struct frame {
	uint64_t pc;
	uint64_t offset;      /* from the function's start */
	char function[96];    /* "" when no symbol covers pc */
	char file[96];        /* the source file's name, "" without line info */
	int line;
	char object[64];      /* the mapped object's file name */
};

/* A stopped or sleeping process's objects, opened once for several
 * look-ups (libdw). NULL and errno when pid cannot be read. */
struct symbols *symbols_open(pid_t pid);
void symbols_close(struct symbols *s);

/* Unwinds thread tid of s's process from its registers r, with the DWARF
 * CFI (.eh_frame, .debug_frame), which needs no frame pointers; the
 * thread must not run meanwhile (asleep in a syscall). Up to max frames
 * into f, innermost first: how many (0 when not even the first is known). */
int symbols_unwind(struct symbols *s, pid_t tid, const struct user_regs *r, struct frame *f,
		   int max);

/* Names the data at addr as a person would: the symbol that holds it
 * ("ledger_lock", "ring+0x28"), else the mapping and offset
 * ("[heap]+0x2a0", "libfoo.so+0x1234"), else the address. */
void symbols_data_name(struct symbols *s, uint64_t addr, char *name, size_t size);

#endif
