/* Go binaries, read with libelf: a Go program has a .go.buildinfo section
 * (Go 1.13+) or at least the runtime.buildVersion symbol; the functions the
 * goroutine sensor attaches to, and the runtime's globals, are found in the
 * symbol table, which `go build -ldflags=-s` strips; the layout of the
 * runtime's structures in the DWARF, which `-w` strips. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
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
		else if (!strcmp(name, "runtime.allglen"))
			g->addr_allglen = sym.st_value;
		else if (!strcmp(name, "runtime.sched"))
			g->addr_sched = sym.st_value;
		else if (!strcmp(name, "runtime.allp"))
			g->addr_allp = sym.st_value;
	}
}

/* The runtime's layout, from the binary's DWARF (Go writes version 4, its
 * sections zlib-compressed, names inline, type references absolute): the
 * offsets of the free lists' lengths. Only the few forms Go's linker writes, and the
 * common fixed-size ones, are known; anything else ends the walk. */
#define DW_TAG_member 0x0d
#define DW_TAG_structure_type 0x13
#define DW_AT_name 0x03
#define DW_AT_data_member_location 0x38
#define DW_AT_type 0x49
#define DW_ABBREVS_MAX 256
#define DW_ATTRS_MAX 24

struct dw_abbrev {
	uint64_t code, tag;
	bool children;
	int nattrs;
	uint16_t attr[DW_ATTRS_MAX], form[DW_ATTRS_MAX];
};

/* One DIE, as the walk hands it over. */
struct dw_die {
	uint64_t off, tag, type;
	const char *name;
	int64_t location;   /* -1 without one */
	int depth;
};

static bool uleb(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*p < end && shift < 64) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int dw_abbrevs(const uint8_t *p, const uint8_t *end, struct dw_abbrev *a, int max)
{
	int n = 0;
	uint64_t code, v, f;

	while (n < max && uleb(&p, end, &code) && code) {
		a[n].code = code;
		a[n].nattrs = 0;
		if (!uleb(&p, end, &a[n].tag) || p >= end)
			return -EINVAL;
		a[n].children = *p++;
		for (;;) {
			if (!uleb(&p, end, &v) || !uleb(&p, end, &f))
				return -EINVAL;
			if (!v && !f)
				break;
			if (a[n].nattrs == DW_ATTRS_MAX)
				return -E2BIG;
			a[n].attr[a[n].nattrs] = (uint16_t)v;
			a[n].form[a[n].nattrs++] = (uint16_t)f;
		}
		n++;
	}
	return n;
}

/* Reads one attribute value of form at *p; its number (or address in the
 * section for strings) in *v. False on a form not known here. */
static bool dw_value(const uint8_t **p, const uint8_t *end, uint64_t form, uint64_t cu, uint64_t *v)
{
	static const uint8_t fixed[] = { [0x01] = 8, [0x05] = 2, [0x06] = 4, [0x07] = 8, [0x0b] = 1,
					 [0x0c] = 1, [0x0e] = 4, [0x10] = 4, [0x11] = 1, [0x12] = 2,
					 [0x13] = 4, [0x14] = 8, [0x17] = 4, [0x20] = 8 };
	uint64_t len;

	if (form == 0x08) { /* string */
		*v = (uint64_t)(uintptr_t)*p;
		while (*p < end && **p)
			(*p)++;
		return (*p)++ < end;
	}
	if (form == 0x0d || form == 0x0f || form == 0x15) { /* sdata, udata, ref_udata */
		if (!uleb(p, end, v))
			return false;
		if (form == 0x15)
			*v += cu;
		return true;
	}
	if (form == 0x19) { /* flag_present */
		*v = 1;
		return true;
	}
	if (form == 0x09 || form == 0x18 || form == 0x0a) { /* block, exprloc, block1 */
		if (form == 0x0a) {
			if (*p >= end)
				return false;
			len = *(*p)++;
		} else if (!uleb(p, end, &len)) {
			return false;
		}
		if (len > (uint64_t)(end - *p))
			return false;
		*v = 0;
		*p += len;
		return true;
	}
	if (form >= sizeof(fixed) || !fixed[form] || end - *p < fixed[form])
		return false;
	*v = le(*p, fixed[form]);
	*p += fixed[form];
	if (form >= 0x11 && form <= 0x14) /* CU-relative references */
		*v += cu;
	return true;
}

/* Calls fn on every DIE of .debug_info; stops when fn returns true. */
static void dw_walk(const uint8_t *info, size_t info_len, const uint8_t *abbrev, size_t abbrev_len,
		    bool (*fn)(const struct dw_die *d, void *ctx), void *ctx)
{
	struct dw_abbrev *ab = malloc(DW_ABBREVS_MAX * sizeof(*ab));
	const uint8_t *p = info, *end = info + info_len;

	while (ab && end - p > 11) {
		uint64_t cu = (uint64_t)(p - info), unit = le(p, 4), aoff = le(p + 6, 4), code;
		const uint8_t *cu_end = p + 4 + unit;
		int n, depth = 0;

		/* 32-bit DWARF 2 to 4 only */
		if (unit >= 0xfffffff0 || unit > (uint64_t)(end - p - 4) || le(p + 4, 2) < 2 || le(p + 4, 2) > 4 ||
		    p[10] != 8 || aoff >= abbrev_len)
			break;
		n = dw_abbrevs(abbrev + aoff, abbrev + abbrev_len, ab, DW_ABBREVS_MAX);
		if (n <= 0)
			break;
		p += 11;
		while (p < cu_end) {
			struct dw_die d = { .off = (uint64_t)(p - info), .location = -1 };
			const struct dw_abbrev *a = NULL;

			if (!uleb(&p, cu_end, &code))
				goto out;
			if (!code) {
				depth--;
				continue;
			}
			for (int i = 0; i < n && !a; i++)
				if (ab[i].code == code)
					a = &ab[i];
			if (!a)
				goto out;
			d.tag = a->tag;
			d.depth = depth;
			for (int i = 0; i < a->nattrs; i++) {
				uint64_t v;

				if (!dw_value(&p, cu_end, a->form[i], cu, &v))
					goto out;
				if (a->attr[i] == DW_AT_name && a->form[i] == 0x08)
					d.name = (const char *)(uintptr_t)v;
				else if (a->attr[i] == DW_AT_data_member_location && a->form[i] != 0x0a &&
					 a->form[i] != 0x09 && a->form[i] != 0x18)
					d.location = (int64_t)v;
				else if (a->attr[i] == DW_AT_type)
					d.type = v;
			}
			if (fn(&d, ctx))
				goto out;
			if (a->children)
				depth++;
		}
		p = cu_end;
	}
out:
	free(ab);
}

/* What the walks look for: members of runtime.schedt and runtime.p, then
 * the n of the structs their gFree members are. */
struct layout_walk {
	const char *parent;          /* the struct being read, or NULL */
	uint64_t sched_gfree_type, p_gfree_type;
	int64_t sched_gfree, p_gfree;
	int64_t sched_gfree_n, p_gfree_n;
};

static bool find_members(const struct dw_die *d, void *ctx)
{
	struct layout_walk *w = ctx;

	/* types are children of their compile unit: depth 1, members 2 */
	if (d->depth <= 1) {
		w->parent = NULL;
		if (d->depth == 1 && d->tag == DW_TAG_structure_type && d->name &&
		    (!strcmp(d->name, "runtime.schedt") || !strcmp(d->name, "runtime.p")))
			w->parent = d->name;
		return false;
	}
	if (!w->parent || d->depth != 2 || d->tag != DW_TAG_member || !d->name)
		return false;
	if (!strcmp(w->parent, "runtime.schedt") && !strcmp(d->name, "gFree")) {
		w->sched_gfree = d->location;
		w->sched_gfree_type = d->type;
	} else if (!strcmp(w->parent, "runtime.p") && !strcmp(d->name, "gFree")) {
		w->p_gfree = d->location;
		w->p_gfree_type = d->type;
	}
	return false;
}

static bool find_gfree_n(const struct dw_die *d, void *ctx)
{
	struct layout_walk *w = ctx;

	if (d->depth <= 1) {
		w->parent = NULL;
		if (d->off == w->sched_gfree_type)
			w->parent = "sched";
		else if (d->off == w->p_gfree_type)
			w->parent = "p";
		return false;
	}
	if (w->parent && d->depth == 2 && d->tag == DW_TAG_member && d->name && !strcmp(d->name, "n")) {
		if (w->parent[0] == 's')
			w->sched_gfree_n = d->location;
		else
			w->p_gfree_n = d->location;
	}
	return w->sched_gfree_n >= 0 && w->p_gfree_n >= 0;
}

static Elf_Data *section_data(Elf_Scn *scn, const GElf_Shdr *sh)
{
	if ((sh->sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
		return NULL;
	return elf_getdata(scn, NULL);
}

static void read_layout(Elf_Scn *info_scn, const GElf_Shdr *info_sh, Elf_Scn *abbrev_scn,
			const GElf_Shdr *abbrev_sh, struct go_elf *g)
{
	struct layout_walk w = { .sched_gfree = -1, .p_gfree = -1,
				 .sched_gfree_n = -1, .p_gfree_n = -1 };
	Elf_Data *info = section_data(info_scn, info_sh), *abbrev = section_data(abbrev_scn, abbrev_sh);

	if (!info || !abbrev || !info->d_buf || !abbrev->d_buf)
		return;
	dw_walk(info->d_buf, info->d_size, abbrev->d_buf, abbrev->d_size, find_members, &w);
	if (w.sched_gfree < 0 || w.p_gfree < 0)
		return;
	w.parent = NULL;
	dw_walk(info->d_buf, info->d_size, abbrev->d_buf, abbrev->d_size, find_gfree_n, &w);
	if (w.sched_gfree_n < 0 || w.p_gfree_n < 0)
		return;
	g->layout.sched_gfree_n = (uint32_t)(w.sched_gfree + w.sched_gfree_n);
	g->layout.p_gfree_n = (uint32_t)(w.p_gfree + w.p_gfree_n);
	g->layout.known = true;
}

/* A stripped binary keeps the runtime's own function table, .gopclntab
 * (.data.rel.ro.gopclntab in a PIE): the runtime needs it for stack traces.
 * Go 1.18+ layout: a header (magic, quantum, pointer size, nfunc, nfiles,
 * then the text start and offsets of the function names and of the
 * function table), the table of (entry - text start, _func offset) pairs,
 * and each _func opening with its entry offset and name offset. Older
 * layouts are not read. */
#define GO_PCLN_MAGIC_118 0xfffffff0u
#define GO_PCLN_MAGIC_120 0xfffffff1u

static void read_pclntab(Elf_Scn *scn, const GElf_Shdr *text, struct go_elf *g)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	const uint8_t *p, *names, *ftab;
	uint64_t nfunc, text_start, names_off, ftab_off, size;
	uint32_t magic;

	if (!d || !d->d_buf || d->d_size < 8 + 8 * 8)
		return;
	p = d->d_buf;
	size = d->d_size;
	memcpy(&magic, p, sizeof(magic));
	if ((magic != GO_PCLN_MAGIC_118 && magic != GO_PCLN_MAGIC_120) || p[7] != 8)
		return;
	nfunc = le(p + 8, 8);
	text_start = le(p + 8 + 2 * 8, 8);
	names_off = le(p + 8 + 3 * 8, 8);
	ftab_off = le(p + 8 + 7 * 8, 8);
	if (names_off >= size || ftab_off >= size || nfunc > (size - ftab_off) / 8)
		return;
	names = p + names_off;
	ftab = p + ftab_off;
	for (uint64_t i = 0; i < nfunc && (!g->off_create || !g->off_exit); i++) {
		uint64_t entry = le(ftab + 8 * i, 4), func = ftab_off + le(ftab + 8 * i + 4, 4), name, vaddr;
		const char *fn;

		if (func + 8 > size)
			return;
		name = le(p + func + 4, 4);
		if (names_off + name >= size || !memchr(names + name, '\0', size - names_off - name))
			continue;
		fn = (const char *)names + name;
		vaddr = text_start + entry;
		if (vaddr < text->sh_addr || vaddr >= text->sh_addr + text->sh_size)
			continue;
		if (!strcmp(fn, GO_SYM_CREATE))
			g->off_create = vaddr - text->sh_addr + text->sh_offset;
		else if (!strcmp(fn, GO_SYM_EXIT))
			g->off_exit = vaddr - text->sh_addr + text->sh_offset;
	}
}

int go_elf_read(int fd, struct go_elf *g)
{
	Elf *elf;
	Elf_Scn *scn = NULL, *info = NULL, *abbrev = NULL, *pcln = NULL;
	GElf_Shdr sh, info_sh = { 0 }, abbrev_sh = { 0 }, text_sh = { 0 };
	size_t len;
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
		} else if (!strcmp(name, ".text")) {
			text_sh = sh;
		} else if ((len = strlen(name)) >= 10 && !strcmp(name + len - 10, ".gopclntab")) {
			pcln = scn;
		} else if (!strcmp(name, ".debug_info")) {
			info = scn;
			info_sh = sh;
		} else if (!strcmp(name, ".debug_abbrev")) {
			abbrev = scn;
			abbrev_sh = sh;
		}
	}
	if (g->is_go && (!g->off_create || !g->off_exit) && pcln && text_sh.sh_size)
		read_pclntab(pcln, &text_sh, g);
	if (g->is_go && info && abbrev && g->addr_allglen && g->addr_sched && g->addr_allp)
		read_layout(info, &info_sh, abbrev, &abbrev_sh, g);
	ehdr_ok = gelf_getehdr(elf, &eh) != NULL;
	g->pie = ehdr_ok && eh.e_type == ET_DYN;
	for (size_t i = 0, n = 0; g->pie && !elf_getphdrnum(elf, &n) && i < n; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_offset == 0) {
			g->load_vaddr = ph.p_vaddr;
			break;
		}
	}
	g->off_create = probe_offset(fd, g->off_create, ehdr_ok && eh.e_machine == EM_X86_64);
	g->off_exit = probe_offset(fd, g->off_exit, ehdr_ok && eh.e_machine == EM_X86_64);
	if (g->is_go && !g->version[0])
		str_copy(g->version, sizeof(g->version), "go (unknown version)");
	elf_end(elf);
	return 0;
}
