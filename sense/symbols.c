#include <errno.h>
#include <fcntl.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Unwinding with libdw (elfutils): the modules from /proc/<pid>/maps, the
 * memory through process_vm_readv, the registers from the caller. Nothing
 * is stopped or attached: the threads unwound are asleep in futex(2). */
struct symbols {
	Dwfl *dwfl;
	pid_t pid;
	pid_t tid;                  /* the thread being unwound */
	const struct user_regs *regs;
};

static char *debuginfo_path;

static const Dwfl_Callbacks symbols_dwfl_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

static pid_t symbols_next_thread(Dwfl *dwfl, void *arg, void **thread_arg)
{
	(void)dwfl;
	(void)arg;
	(void)thread_arg;
	return 0; /* threads are asked for by id only */
}

static bool symbols_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_arg)
{
	struct symbols *s = arg;

	(void)dwfl;
	*thread_arg = s;
	return tid == s->tid;
}

static bool symbols_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct symbols *s = arg;

	(void)dwfl;
	return read_process_memory(s->pid, addr, result, sizeof(*result)) == 0;
}

static bool symbols_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
	struct symbols *s = thread_arg;
	Dwarf_Word regs[32];

	for (unsigned i = 0; i < s->regs->nregs && i < 32; i++)
		regs[i] = s->regs->regs[i];
	if (!dwfl_thread_state_registers(thread, 0, s->regs->nregs, regs))
		return false;
	dwfl_thread_state_register_pc(thread, s->regs->pc);
	return true;
}

static const Dwfl_Thread_Callbacks symbols_thread_callbacks = {
	.next_thread = symbols_next_thread,
	.get_thread = symbols_get_thread,
	.memory_read = symbols_memory_read,
	.set_initial_registers = symbols_initial_registers,
};

/* Reports each object where it is loaded (its mapping at file offset 0),
 * opened as the process sees it (as symbols_resolve does): a process in a
 * container is named from its own files, not the host's at the same path. */
static int symbols_report(const struct mapping *m, void *ctx)
{
	struct symbols *s = ctx;
	char path[320];
	int fd;

	if (m->offset)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, s->pid, m->start,
		 m->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/root%s", s->pid, m->path);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	/* an object that cannot be read is left out: its frames stay addresses */
	if (fd >= 0 && !dwfl_report_elf(s->dwfl, m->path, path, fd, m->start, false))
		close(fd);
	return 0;
}

struct symbols *symbols_open(pid_t pid)
{
	struct symbols *s = calloc(1, sizeof(*s));
	int err = -ENOMEM;

	if (!s)
		goto fail;
	s->pid = pid;
	/* debug info comes from this host's files only: with DEBUGINFOD_URLS
	 * set (Debian's profile does), libdw would fetch it over the network,
	 * on the loop */
	(void)unsetenv("DEBUGINFOD_URLS");
	s->dwfl = dwfl_begin(&symbols_dwfl_callbacks);
	if (!s->dwfl)
		goto fail;
	err = symbols_each_mapping(pid, symbols_report, s);
	if (err < 0)
		goto fail;
	err = -EINVAL;
	if (dwfl_report_end(s->dwfl, NULL, NULL) ||
	    !dwfl_attach_state(s->dwfl, NULL, pid, &symbols_thread_callbacks, s))
		goto fail;
	return s;
fail:
	symbols_close(s);
	errno = -err;
	return NULL;
}

void symbols_close(struct symbols *s)
{
	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	free(s);
}

static void base_name(char *dst, size_t size, const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	str_copy(dst, size, slash ? slash + 1 : path ? path : "");
}

/* Fills f for pc; adjusted is the address looked up (a return address
 * minus one: the call, not what follows it). */
static void symbols_describe_pc(Dwfl *dwfl, uint64_t pc, uint64_t adjusted, struct frame *f)
{
	Dwfl_Module *mod = dwfl_addrmodule(dwfl, adjusted);
	GElf_Off off = 0;
	GElf_Sym sym;
	Dwfl_Line *line;
	const char *name;

	memset(f, 0, sizeof(*f));
	f->pc = pc;
	if (!mod)
		return;
	base_name(f->object, sizeof(f->object),
		  dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
	name = dwfl_module_addrinfo(mod, adjusted, &off, &sym, NULL, NULL, NULL);
	if (name) {
		str_copy(f->function, sizeof(f->function), name);
		f->offset = off + (pc - adjusted);
	}
	line = dwfl_module_getsrc(mod, adjusted);
	if (line) {
		const char *file = dwfl_lineinfo(line, NULL, &f->line, NULL, NULL, NULL);

		base_name(f->file, sizeof(f->file), file);
	}
}

struct unwind {
	struct symbols *s;
	struct frame *f;
	int n, max;
};

static int symbols_frame(Dwfl_Frame *state, void *arg)
{
	struct unwind *u = arg;
	Dwarf_Addr pc;
	bool activation;

	if (!dwfl_frame_pc(state, &pc, &activation) || !pc)
		return DWARF_CB_ABORT;
	symbols_describe_pc(u->s->dwfl, pc, activation ? pc : pc - 1, &u->f[u->n++]);
	return u->n < u->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

int symbols_unwind(struct symbols *s, pid_t tid, const struct user_regs *r, struct frame *f,
		   int max)
{
	struct unwind u = { .s = s, .f = f, .max = max };

	if (max <= 0 || !r->nregs)
		return 0;
	s->tid = tid;
	s->regs = r;
	/* an error ends the walk: the frames found until then are kept */
	(void)dwfl_getthread_frames(s->dwfl, tid, symbols_frame, &u);
	return u.n;
}

struct data_module {
	uint64_t addr;
	Dwfl_Module *found;
};

/* Whether a loadable segment of mod's ELF, where it is loaded, covers
 * the address (.bss lies past the file's last mapped page). */
static int symbols_data_module(Dwfl_Module *mod, void **userdata, const char *name,
			       Dwarf_Addr start, void *arg)
{
	struct data_module *d = arg;
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(mod, &bias);
	size_t n;
	GElf_Phdr ph;

	(void)userdata;
	(void)name;
	(void)start;
	if (!elf || elf_getphdrnum(elf, &n))
		return DWARF_CB_OK;
	for (size_t i = 0; i < n; i++) {
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (d->addr >= ph.p_vaddr + bias && d->addr < ph.p_vaddr + bias + ph.p_memsz) {
			d->found = mod;
			return DWARF_CB_ABORT;
		}
	}
	return DWARF_CB_OK;
}

/* Names addr by the mapping that holds it, anonymous ones included. */
static int symbols_data_mapping(pid_t pid, uint64_t addr, char *name, size_t size)
{
	char path[64], line[512], object[64];
	uint64_t start, end, offset;
	int at;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		at = 0;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*u %n", &start, &end,
			   &offset, &at) < 3 || addr < start || addr >= end)
			continue;
		line[strcspn(line, "\n")] = '\0';
		base_name(object, sizeof(object), at && line[at] ? line + at : "[anon]");
		snprintf(name, size, "%s+0x%" PRIx64, object, addr - start + offset);
		fclose(f);
		return 0;
	}
	fclose(f);
	return -ENOENT;
}

void symbols_data_name(struct symbols *s, uint64_t addr, char *name, size_t size)
{
	struct data_module d = { .addr = addr, .found = dwfl_addrmodule(s->dwfl, addr) };
	GElf_Off off = 0;
	GElf_Sym sym;
	const char *sname = NULL;

	snprintf(name, size, "0x%" PRIx64, addr);
	if (!d.found)
		(void)dwfl_getmodules(s->dwfl, symbols_data_module, &d, 0);
	if (d.found)
		sname = dwfl_module_addrinfo(d.found, addr, &off, &sym, NULL, NULL, NULL);
	if (sname && GELF_ST_TYPE(sym.st_info) == STT_OBJECT) {
		if (off)
			snprintf(name, size, "%s+0x%" PRIx64, sname, (uint64_t)off);
		else
			str_copy(name, size, sname);
		return;
	}
	(void)symbols_data_mapping(s->pid, addr, name, size);
}
