/* Go binaries, read with libelf: a Go program has a .go.buildinfo section
 * (Go 1.13+) or at least the runtime.buildVersion symbol; the functions the
 * goroutine sensor attaches to, and the runtime's globals, are found in the
 * symbol table, which `go build -ldflags=-s` strips, and then in the
 * runtime's own function table (.gopclntab) and code; the layout of a
 * goroutine in the DWARF, which `-w` strips, and then in a table of the Go
 * releases known here. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
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
		else if (!strcmp(name, "runtime.allgptr"))
			g->addr_allgptr = sym.st_value;
	}
	if (g->addr_allglen && g->addr_allgptr)
		g->table_from = GO_TABLE_SYMTAB;
}

/* The runtime's layout, from the binary's DWARF (Go writes version 4, its
 * sections zlib-compressed, names inline, type references absolute): the
 * offsets of a goroutine's status and creation site. Only the few forms Go's linker writes, and the
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

/* What the walk looks for: members of runtime.g. */
struct layout_walk {
	bool in_g;
	int64_t status, gopc;
};

static bool find_members(const struct dw_die *d, void *ctx)
{
	struct layout_walk *w = ctx;

	/* types are children of their compile unit: depth 1, members 2 */
	if (d->depth <= 1) {
		w->in_g = d->depth == 1 && d->tag == DW_TAG_structure_type && d->name &&
			  !strcmp(d->name, "runtime.g");
		return false;
	}
	if (!w->in_g || d->depth != 2 || d->tag != DW_TAG_member || !d->name)
		return false;
	if (!strcmp(d->name, "atomicstatus"))
		w->status = d->location;
	else if (!strcmp(d->name, "gopc"))
		w->gopc = d->location;
	return w->status >= 0 && w->gopc >= 0;
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
	struct layout_walk w = { .status = -1, .gopc = -1 };
	Elf_Data *info = section_data(info_scn, info_sh), *abbrev = section_data(abbrev_scn, abbrev_sh);

	if (!info || !abbrev || !info->d_buf || !abbrev->d_buf)
		return;
	dw_walk(info->d_buf, info->d_size, abbrev->d_buf, abbrev->d_size, find_members, &w);
	if (w.status < 0 || w.gopc < 0 || w.status > UINT16_MAX || w.gopc > UINT16_MAX)
		return;
	g->g_layout.status = (uint32_t)w.status;
	g->g_layout.gopc = (uint32_t)w.gopc;
	g->g_layout.known = g->g_layout.from_dwarf = true;
}

/* Offsets in runtime.g (amd64 and every 64-bit port: the fields before
 * them are pointers and fixed-size integers) by Go release, for binaries
 * without DWARF. Each was read from a binary of that release: its DWARF,
 * or a stripped one's live goroutines (docs/goroutines.md). A release not
 * here is read only with DWARF. */
static const struct {
	int minor;
	uint32_t status, gopc;
} go_g_layouts[] = {
	{ 19, 144, 296 },  /* go1.19.8, DWARF */
	{ 22, 144, 280 },  /* go1.22.5, stripped kubectl 1.27 */
	{ 23, 152, 288 },  /* go1.23.8, kubectl 1.30 (syscallbp came before) */
	{ 24, 152, 288 },  /* go1.24.2, kubectl 1.33 */
};

static void version_layout(struct go_elf *g)
{
	int minor;

	if (g->g_layout.known || sscanf(g->version, "go1.%d", &minor) != 1)
		return;
	for (size_t i = 0; i < sizeof(go_g_layouts) / sizeof(go_g_layouts[0]); i++)
		if (go_g_layouts[i].minor == minor) {
			g->g_layout.status = go_g_layouts[i].status;
			g->g_layout.gopc = go_g_layouts[i].gopc;
			g->g_layout.known = true;
		}
}

/* A stripped binary keeps the runtime's own function table, .gopclntab
 * (.data.rel.ro.gopclntab in a PIE): the runtime needs it for stack traces.
 * Go 1.18+ layout: a header (magic, pc quantum, pointer size, nfunc,
 * nfiles, the text start, then the offsets of the function names, of the
 * compile units' file lists, of the file names, of the pc-value tables and
 * of the function table), the function table of nfunc + 1 (entry - text
 * start, _func offset) pairs, sorted, and each _func opening with entry
 * offset, name offset, args, deferreturn, then the offsets of its pc-to-sp,
 * pc-to-file and pc-to-line tables, npcdata and its compile unit. Older
 * layouts are not read. */
#define GO_PCLN_MAGIC_118 0xfffffff0u
#define GO_PCLN_MAGIC_120 0xfffffff1u

struct pcln {
	const uint8_t *p;
	uint64_t size, nfunc, text_start, names, cus, files, pctab, ftab;
	uint8_t quantum;
};

/* 0, or -ENOEXEC when the section is not a table this reads. A zero text
 * start (a PIE's, filled in by a relocation) is .text's address: the
 * runtime's text symbol is where .text begins. */
static int pcln_open(Elf_Scn *scn, const GElf_Shdr *text, struct pcln *t)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	uint32_t magic;

	if (!d || !d->d_buf || d->d_size < 8 + 8 * 8)
		return -ENOEXEC;
	t->p = d->d_buf;
	t->size = d->d_size;
	memcpy(&magic, t->p, sizeof(magic));
	if ((magic != GO_PCLN_MAGIC_118 && magic != GO_PCLN_MAGIC_120) || t->p[7] != 8 || !t->p[6])
		return -ENOEXEC;
	t->quantum = t->p[6];
	t->nfunc = le(t->p + 8, 8);
	t->text_start = le(t->p + 24, 8);
	if (!t->text_start)
		t->text_start = text->sh_addr;
	t->names = le(t->p + 32, 8);
	t->cus = le(t->p + 40, 8);
	t->files = le(t->p + 48, 8);
	t->pctab = le(t->p + 56, 8);
	t->ftab = le(t->p + 64, 8);
	if (t->names >= t->size || t->cus >= t->size || t->files >= t->size || t->pctab >= t->size ||
	    t->ftab >= t->size || t->nfunc >= (t->size - t->ftab) / 8)
		return -ENOEXEC;
	return 0;
}

/* The NUL-terminated string at off in the table, or NULL. */
static const char *pcln_str(const struct pcln *t, uint64_t off)
{
	if (off >= t->size || !memchr(t->p + off, '\0', t->size - off))
		return NULL;
	return (const char *)t->p + off;
}

/* Function i's entry address and the offset of its _func (at least 40
 * bytes in the table); false when out of bounds. */
static bool pcln_func(const struct pcln *t, uint64_t i, uint64_t *entry, uint64_t *func)
{
	*entry = t->text_start + le(t->p + t->ftab + 8 * i, 4);
	*func = t->ftab + le(t->p + t->ftab + 8 * i + 4, 4);
	return *func <= t->size - 40;
}

/* The entry address of the function called name; 0 when none is. */
static uint64_t pcln_lookup(const struct pcln *t, const char *name)
{
	for (uint64_t i = 0; i < t->nfunc; i++) {
		uint64_t entry, func;
		const char *fn;

		if (!pcln_func(t, i, &entry, &func))
			return 0;
		fn = pcln_str(t, t->names + le(t->p + func + 4, 4));
		if (fn && !strcmp(fn, name))
			return entry;
	}
	return 0;
}

/* The value of the pc-value table at off for pc, in the function starting
 * at entry (the runtime's pcvalue: zigzag value deltas and pc deltas in
 * quanta, from -1 at the entry). False when pc is past its end. */
static bool pcln_value(const struct pcln *t, uint64_t off, uint64_t entry, uint64_t pc, int64_t *val)
{
	const uint8_t *p, *end = t->p + t->size;
	uint64_t at = entry, uv, dpc;
	bool first = true;

	if (t->pctab + off >= t->size)
		return false;
	p = t->p + t->pctab + off;
	*val = -1;
	for (;;) {
		if (!uleb(&p, end, &uv) || (!uv && !first))
			return false;
		first = false;
		*val += (uv & 1) ? -(int64_t)((uv >> 1) + 1) : (int64_t)(uv >> 1);
		if (!uleb(&p, end, &dpc))
			return false;
		at += dpc * t->quantum;
		if (pc < at)
			return true;
	}
}

/* The two globals runtime.forEachGRace loads first, in order: allglen,
 * then allgptr (atomicAllG, inlined; atomic loads keep their order). On
 * x86-64 a load of a global is `mov disp32(%rip),%r64`: REX.W (0x48 or
 * 0x4c), 0x8b, a ModRM of mod 00 and r/m 101; the global is at the next
 * instruction's address plus disp32. Each must be in a writable section:
 * a misread is then refused rather than read from. */
static void read_gtable(Elf *elf, int fd, const struct pcln *t, const GElf_Shdr *text, struct go_elf *g)
{
	uint64_t entry = pcln_lookup(t, "runtime.forEachGRace"), found[2];
	unsigned char code[96];
	int n = 0;

	if (!entry || entry < text->sh_addr || entry >= text->sh_addr + text->sh_size ||
	    pread(fd, code, sizeof(code), (off_t)(entry - text->sh_addr + text->sh_offset)) != (ssize_t)sizeof(code))
		return;
	for (size_t i = 0; i + 7 <= sizeof(code) && n < 2; i++) {
		int32_t disp;

		if ((code[i] != 0x48 && code[i] != 0x4c) || code[i + 1] != 0x8b || (code[i + 2] & 0xc7) != 0x05)
			continue;
		memcpy(&disp, code + i + 3, sizeof(disp));
		found[n++] = entry + i + 7 + (uint64_t)(int64_t)disp;
		i += 6;
	}
	if (n < 2)
		return;
	for (int k = 0; k < 2; k++) {
		Elf_Scn *scn = NULL;
		GElf_Shdr sh;
		bool ok = false;

		while (!ok && (scn = elf_nextscn(elf, scn)))
			ok = gelf_getshdr(scn, &sh) && (sh.sh_flags & (SHF_WRITE | SHF_ALLOC)) == (SHF_WRITE | SHF_ALLOC) &&
			     found[k] % 8 == 0 && found[k] >= sh.sh_addr && found[k] + 8 <= sh.sh_addr + sh.sh_size;
		if (!ok)
			return;
	}
	g->addr_allglen = found[0];
	g->addr_allgptr = found[1];
	g->table_from = GO_TABLE_CODE;
}

static void read_pclntab(Elf *elf, int fd, Elf_Scn *scn, const GElf_Shdr *text, bool x86_64, struct go_elf *g)
{
	struct pcln t;
	uint64_t vaddr;

	if (pcln_open(scn, text, &t))
		return;
	if (!g->off_create && (vaddr = pcln_lookup(&t, GO_SYM_CREATE)) && vaddr >= text->sh_addr &&
	    vaddr < text->sh_addr + text->sh_size)
		g->off_create = vaddr - text->sh_addr + text->sh_offset;
	if (!g->off_exit && (vaddr = pcln_lookup(&t, GO_SYM_EXIT)) && vaddr >= text->sh_addr &&
	    vaddr < text->sh_addr + text->sh_size)
		g->off_exit = vaddr - text->sh_addr + text->sh_offset;
	if (g->table_from == GO_TABLE_NONE && x86_64)
		read_gtable(elf, fd, &t, text, g);
}

/* .gopclntab, or .data.rel.ro.gopclntab in a PIE */
static bool is_pclntab(const char *name)
{
	size_t len = strlen(name);

	return len >= 10 && !strcmp(name + len - 10, ".gopclntab");
}

/* The sections go_elf_read looks at. */
struct go_sections {
	Elf_Scn *info, *abbrev, *pcln;
	GElf_Shdr info_sh, abbrev_sh, text_sh;
};

static int open_elf(int fd, Elf **elf, size_t *shstrndx)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	*elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!*elf)
		return -ENOEXEC;
	if (elf_kind(*elf) != ELF_K_ELF || elf_getshdrstrndx(*elf, shstrndx)) {
		elf_end(*elf);
		return -ENOEXEC;
	}
	return 0;
}

int go_elf_symbolize(int fd, uint64_t pc, struct go_site *site)
{
	Elf *elf;
	Elf_Scn *scn = NULL, *pscn = NULL;
	GElf_Shdr sh, text = { 0 };
	size_t shstrndx;
	struct pcln t;
	uint64_t lo = 0, hi, entry, end, func;
	int64_t fileno, line;
	const char *s;
	int err;

	memset(site, 0, sizeof(*site));
	if ((err = open_elf(fd, &elf, &shstrndx)))
		return err;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(elf, shstrndx, sh.sh_name)))
			continue;
		if (!strcmp(name, ".text"))
			text = sh;
		else if (is_pclntab(name))
			pscn = scn;
	}
	err = -ENOENT;
	if (!pscn || !text.sh_size || pcln_open(pscn, &text, &t) || !t.nfunc)
		goto cleanup;
	/* the last function whose entry is at or before pc; the table's
	 * extra last entry is the end of the text */
	hi = t.nfunc;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (!pcln_func(&t, mid, &entry, &func))
			goto cleanup;
		if (entry <= pc)
			lo = mid;
		else
			hi = mid;
	}
	if (!pcln_func(&t, lo + 1, &end, &func) || !pcln_func(&t, lo, &entry, &func) || pc < entry || pc >= end)
		goto cleanup;
	if (!(s = pcln_str(&t, t.names + le(t.p + func + 4, 4))))
		goto cleanup;
	str_copy(site->function, sizeof(site->function), s);
	err = 0;
	if (pcln_value(&t, le(t.p + func + 24, 4), entry, pc, &line) && line > 0 && line <= INT32_MAX)
		site->line = (int)line;
	if (pcln_value(&t, le(t.p + func + 20, 4), entry, pc, &fileno) && fileno >= 0 &&
	    t.cus + 4 * (le(t.p + func + 32, 4) + (uint64_t)fileno) + 4 <= t.size) {
		uint64_t off = le(t.p + t.cus + 4 * (le(t.p + func + 32, 4) + (uint64_t)fileno), 4);

		if (off != 0xffffffffu && (s = pcln_str(&t, t.files + off)))
			str_copy(site->file, sizeof(site->file), s);
	}
cleanup:
	elf_end(elf);
	return err;
}

int go_elf_read(int fd, struct go_elf *g)
{
	Elf *elf;
	Elf_Scn *scn = NULL;
	struct go_sections s = { 0 };
	GElf_Shdr sh;
	GElf_Ehdr eh;
	size_t shstrndx;
	bool ehdr_ok, x86_64;
	int err;

	memset(g, 0, sizeof(*g));
	if ((err = open_elf(fd, &elf, &shstrndx)))
		return err;
	ehdr_ok = gelf_getehdr(elf, &eh) != NULL;
	x86_64 = ehdr_ok && eh.e_machine == EM_X86_64;
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
			s.text_sh = sh;
		} else if (is_pclntab(name)) {
			s.pcln = scn;
		} else if (!strcmp(name, ".debug_info")) {
			s.info = scn;
			s.info_sh = sh;
		} else if (!strcmp(name, ".debug_abbrev")) {
			s.abbrev = scn;
			s.abbrev_sh = sh;
		}
	}
	if (g->is_go && (!g->off_create || !g->off_exit || g->table_from == GO_TABLE_NONE) && s.pcln &&
	    s.text_sh.sh_size)
		read_pclntab(elf, fd, s.pcln, &s.text_sh, x86_64, g);
	if (g->is_go && s.info && s.abbrev)
		read_layout(s.info, &s.info_sh, s.abbrev, &s.abbrev_sh, g);
	if (g->is_go && !g->version[0])
		str_copy(g->version, sizeof(g->version), "go (unknown version)");
	if (g->is_go)
		version_layout(g);
	g->pie = ehdr_ok && eh.e_type == ET_DYN;
	for (size_t i = 0, n = 0; g->pie && !elf_getphdrnum(elf, &n) && i < n; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_offset == 0) {
			g->load_vaddr = ph.p_vaddr;
			break;
		}
	}
	g->off_create = probe_offset(fd, g->off_create, x86_64);
	g->off_exit = probe_offset(fd, g->off_exit, x86_64);
	elf_end(elf);
	return 0;
}
