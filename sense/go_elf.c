/* Go binaries, read with libelf: a Go program has a .go.buildinfo section
 * (Go 1.13+) or at least the runtime.buildVersion symbol; the functions the
 * goroutine sensor attaches to are found in the symbol table, which
 * `go build -ldflags=-s` strips. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "sense/go_elf.h"

/* Go 1.18+ writes its version inline in .go.buildinfo: a 14-byte magic,
 * the pointer size, a flags byte (2: inline strings), padding to 32, then
 * a varint length and the bytes. Older layouts point into the data
 * segment instead; they get "go (unknown version)". */
static void buildinfo_version(Elf_Scn *scn, char *out, size_t size)
{
	static const char magic[] = "\xff Go buildinf:";
	Elf_Data *d = elf_getdata(scn, NULL);
	const unsigned char *p;
	uint64_t len = 0;
	size_t i, shift = 0;

	str_copy(out, size, "go (unknown version)");
	if (!d || !d->d_buf || d->d_size < 33)
		return;
	p = d->d_buf;
	if (memcmp(p, magic, sizeof(magic) - 1) || !(p[15] & 2))
		return;
	for (i = 32; i < d->d_size && i < 42; i++) {
		len |= (uint64_t)(p[i] & 0x7f) << shift;
		shift += 7;
		if (!(p[i] & 0x80))
			break;
	}
	i++;
	if (len == 0 || len >= size || i + len > d->d_size)
		return;
	memcpy(out, p + i, len);
	out[len] = '\0';
}

/* Where to probe the function at file offset off. A Go function opens with
 * its stack check, `cmp 0x10(%r14),%rsp` then `jbe morestack`. The kernel
 * cannot emulate the cmp, so a probe there single-steps it out of line: a
 * second trap per call. It emulates the conditional jump, which runs exactly
 * as often (on every entry, re-entries after morestack included, as for the
 * cmp), so the probe goes on the jump when the prologue is that one. */
static uint64_t probe_offset(int fd, uint64_t off, bool x86_64)
{
	static const unsigned char stack_check[] = { 0x49, 0x3b, 0x66, 0x10 };
	unsigned char insn[6];

	if (!x86_64 || !off || pread(fd, insn, sizeof(insn), (off_t)off) != (ssize_t)sizeof(insn) ||
	    memcmp(insn, stack_check, sizeof(stack_check)))
		return off;
	if (insn[4] == 0x76 || (insn[4] == 0x0f && insn[5] == 0x86))
		return off + sizeof(stack_check);
	return off;
}

/* The file offset of the function at vaddr, from the section holding it. */
static uint64_t symbol_offset(Elf *elf, const GElf_Sym *sym)
{
	Elf_Scn *scn = elf_getscn(elf, sym->st_shndx);
	GElf_Shdr sh;

	if (!scn || !gelf_getshdr(scn, &sh) || sym->st_value < sh.sh_addr)
		return 0;
	return sym->st_value - sh.sh_addr + sh.sh_offset;
}

static void read_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, struct go_elf *g)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
	GElf_Sym sym;

	g->has_symtab = true;
	for (size_t i = 0; d && i < n; i++) {
		const char *name;

		if (!gelf_getsym(d, (int)i, &sym))
			break;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name || name[0] != 'r' || strncmp(name, "runtime.", 8))
			continue;
		if (!strcmp(name, GO_SYM_CREATE))
			g->off_create = symbol_offset(elf, &sym);
		else if (!strcmp(name, GO_SYM_EXIT))
			g->off_exit = symbol_offset(elf, &sym);
		else if (!strcmp(name, "runtime.buildVersion"))
			g->is_go = true;
	}
}

int go_elf_read(int fd, struct go_elf *g)
{
	Elf *elf;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	GElf_Ehdr eh;
	size_t shstrndx;
	bool ehdr_ok;

	memset(g, 0, sizeof(*g));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	if (elf_kind(elf) != ELF_K_ELF || elf_getshdrstrndx(elf, &shstrndx)) {
		elf_end(elf);
		return -ENOEXEC;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name)
			continue;
		if (!strcmp(name, ".go.buildinfo")) {
			g->is_go = true;
			buildinfo_version(scn, g->version, sizeof(g->version));
		} else if (sh.sh_type == SHT_SYMTAB) {
			read_symtab(elf, scn, &sh, g);
		}
	}
	ehdr_ok = gelf_getehdr(elf, &eh) != NULL;
	g->off_create = probe_offset(fd, g->off_create, ehdr_ok && eh.e_machine == EM_X86_64);
	g->off_exit = probe_offset(fd, g->off_exit, ehdr_ok && eh.e_machine == EM_X86_64);
	if (g->is_go && !g->version[0])
		str_copy(g->version, sizeof(g->version), "go (unknown version)");
	elf_end(elf);
	return 0;
}
