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

#endif
