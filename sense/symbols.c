#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "sense/symbols.h"

int symbols_each_mapping(pid_t pid, int (*fn)(const struct mapping *m, void *ctx), void *ctx)
{
	char path[64], line[512];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!rc && fgets(line, sizeof(line), f)) {
		struct mapping m = { 0 };
		int at = 0;

		/* start-end perms offset dev inode path */
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*u %n", &m.start, &m.end,
			   &m.offset, &at) < 3 || !at || line[at] != '/')
			continue;
		line[strcspn(line, "\n")] = '\0';
		str_copy(m.path, sizeof(m.path), line + at);
		/* replaced on disk since: map_files still opens what is mapped */
		if (strlen(m.path) > 10 && !strcmp(m.path + strlen(m.path) - 10, " (deleted)"))
			m.path[strlen(m.path) - 10] = '\0';
		rc = fn(&m, ctx);
	}
	fclose(f);
	return rc;
}

static void elf_init(void)
{
	static bool done;

	if (!done) {
		(void)elf_version(EV_CURRENT);
		done = true;
	}
}

/* The symbol of the function containing vaddr in elf: 0 and name+offset
 * (the offset of vaddr + shift: a return address is looked up by the call
 * before it, and shown as itself), or -ENOENT. The full symbol table when there is one, else the dynamic
 * one (stripped objects keep only that). */
static int function_at(Elf *elf, uint64_t vaddr, uint64_t shift, char *name, size_t size)
{
	for (int pass = 0; pass < 2; pass++) {
		Elf_Scn *scn = NULL;
		GElf_Shdr sh;

		while ((scn = elf_nextscn(elf, scn))) {
			Elf_Data *data;
			GElf_Sym sym, best = { 0 };
			const char *best_name = NULL;

			if (!gelf_getshdr(scn, &sh) ||
			    sh.sh_type != (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM) || !sh.sh_entsize)
				continue;
			data = elf_getdata(scn, NULL);
			if (!data)
				continue;
			for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
				if (!gelf_getsym(data, (int)i, &sym) ||
				    GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value ||
				    sym.st_value > vaddr)
					continue;
				if (sym.st_size && vaddr >= sym.st_value + sym.st_size)
					continue;
				if (!best_name || sym.st_value > best.st_value) {
					best = sym;
					best_name = elf_strptr(elf, sh.sh_link, sym.st_name);
				}
			}
			if (best_name && *best_name) {
				snprintf(name, size, "%s+0x%" PRIx64, best_name,
					 vaddr + shift - best.st_value);
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* The virtual address in the object of file offset off: through the
 * loadable segment that holds it. */
static int offset_to_vaddr(Elf *elf, uint64_t off, uint64_t *vaddr)
{
	size_t n;
	GElf_Phdr ph;

	if (elf_getphdrnum(elf, &n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (off >= ph.p_offset && off < ph.p_offset + ph.p_filesz) {
			*vaddr = off - ph.p_offset + ph.p_vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

struct resolve {
	uint64_t addr;
	struct mapping found;
};

static int find_mapping(const struct mapping *m, void *ctx)
{
	struct resolve *r = ctx;

	if (r->addr < m->start || r->addr >= m->end)
		return 0;
	r->found = *m;
	return 1;
}

int symbols_resolve(pid_t pid, uint64_t addr, char *name, size_t size, char *object,
		    size_t osize)
{
	struct resolve r = { .addr = addr };
	char path[320];
	uint64_t vaddr;
	Elf *elf;
	int fd, rc = -ENOENT;

	snprintf(name, size, "0x%" PRIx64, addr);
	if (osize)
		object[0] = '\0';
	if (symbols_each_mapping(pid, find_mapping, &r) != 1)
		return -ENOENT;
	str_copy(object, osize, r.found.path);
	elf_init();
	/* the very file mapped, even if replaced since; else by its path as
	 * the process sees it */
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, r.found.start,
		 r.found.end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(path, sizeof(path), "/proc/%d/root%s", pid, r.found.path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	/* a return address: the call is the byte before it */
	if (elf && !offset_to_vaddr(elf, addr - 1 - r.found.start + r.found.offset, &vaddr) &&
	    !function_at(elf, vaddr, 1, name, size))
		rc = 0;
	elf_end(elf);
	close(fd);
	return rc;
}

bool symbols_defines(const char *path, const char *sym)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf_Scn *scn = NULL;
	bool found = false;
	GElf_Shdr sh;
	Elf *elf;

	if (fd < 0)
		return false;
	elf_init();
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	while (elf && !found && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		GElf_Sym s;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize ||
		    !(data = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; !found && i < sh.sh_size / sh.sh_entsize; i++) {
			const char *n;

			if (!gelf_getsym(data, (int)i, &s) || s.st_shndx == SHN_UNDEF ||
			    GELF_ST_TYPE(s.st_info) != STT_FUNC)
				continue;
			n = elf_strptr(elf, sh.sh_link, s.st_name);
			found = n && strcmp(n, sym) == 0;
		}
	}
	elf_end(elf);
	close(fd);
	return found;
}
