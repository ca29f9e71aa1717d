/* `reflexd probe` and the checks the daemon shares with it: what each
 * sensor and actuator needs from the kernel, and whether this one has it.
 * The answer that counts is loading the component's own BPF objects;
 * libbpf's probes of program types, map types and helpers say which part
 * is missing when the load fails. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/btf.h>

#include "act/traffic.h"
#include "k8s/k8s.h"
#include "lib/log.h"
#include "cmd/probe.h"
#include "lib/util.h"
#include "sense/sensor.h"

#define CGROUP2_SUPER_MAGIC 0x63677270
#define TMPFS_MAGIC 0x01021994

static struct {
	char *why;
	size_t size;
	bool verifier;       /* the verifier's line is in why already */
	libbpf_print_fn_t chained;
} capture;

/* The verifier's own reason: the last line of its log that is not the
 * statistics it prints after every load. */
static void verifier_reason(const char *msg, struct sbuf *b)
{
	const char *end = strstr(msg, "-- END PROG LOAD LOG --"), *start, *line = NULL;
	size_t n = 0;

	if (!end)
		return;
	start = strstr(msg, "-- BEGIN PROG LOAD LOG --");
	start = start ? start + strlen("-- BEGIN PROG LOAD LOG --") : msg;
	for (const char *p = start; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (len && strncmp(p, "processed ", 10) && strncmp(p, "verification time", 17)) {
			line = p;
			n = len;
		}
		p += len + 1;
	}
	if (line)
		sbuf_printf(b, " (verifier: %.*s)", (int)n, line);
}

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL;
	va_list copy;
	struct sbuf b;

	va_copy(copy, ap);
	/* whole: a verifier log runs to thousands of lines, its reason last */
	if (level == LIBBPF_WARN && capture.why && vasprintf(&msg, fmt, copy) >= 0) {
		size_t kept = strlen(capture.why);

		/* appending to what is kept (sbuf_init empties the buffer) */
		sbuf_init(&b, capture.why + kept, capture.size - kept);
		if (!kept) {
			const char *s = strncmp(msg, "libbpf: ", 8) ? msg : msg + 8;

			sbuf_printf(&b, "%.*s", (int)strcspn(s, "\n"), s);
		} else if (!capture.verifier && strstr(msg, "-- END PROG LOAD LOG --")) {
			verifier_reason(msg, &b);
			capture.verifier = true;
		}
		free(msg);
	}
	va_end(copy);
	return capture.chained ? capture.chained(level, fmt, ap) : 0;
}

void probe_capture_begin(char *why, size_t size)
{
	why[0] = '\0';
	capture.why = why;
	capture.size = size;
	capture.verifier = false;
	capture.chained = libbpf_set_print(capture_print);
}

void probe_capture_end(void)
{
	(void)libbpf_set_print(capture.chained);
	capture.why = NULL;
}

bool probe_forced_down(const char *name, char *why, size_t size)
{
	const char *list = getenv(REFLEX_TEST_FAIL_ENV);
	size_t n = strlen(name);

	for (const char *p = list; p && *p; p += strcspn(p, ","), p += *p == ',') {
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || !p[n])) {
			snprintf(why, size, "forced down by %s (a test hook)", REFLEX_TEST_FAIL_ENV);
			return true;
		}
	}
	return false;
}

/* One object loaded as its component would load it: each of configure's
 * choices in turn until one loads; the last refusal otherwise. */
static int probe_load_object(const struct kernel_needs *n, const void *(*object)(size_t *size))
{
	int err = -ENOENT;

	for (int attempt = 0;; attempt++) {
		size_t len;
		const void *elf = object(&len);
		struct bpf_object *obj = bpf_object__open_mem(elf, len, NULL);

		if (!obj)
			return -errno;
		if (n->configure && n->configure(obj, attempt)) {
			bpf_object__close(obj);
			return err;
		}
		err = bpf_object__load(obj);
		bpf_object__close(obj);
		if (!err || !n->configure)
			return err;
	}
}

int probe_load(const struct kernel_needs *n)
{
	int err = 0;

	for (size_t i = 0; !err && i < ARRAY_SIZE(n->objects) && n->objects[i]; i++)
		err = probe_load_object(n, n->objects[i]);
	return err;
}

static int signal_check(const struct config *cfg, char *why, size_t size)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0), err = errno;

	if (fd < 0) {
		snprintf(why, size, "pidfd_open: %s (needs Linux 5.3)", strerror(err));
		return -err;
	}
	close(fd);
	return 0;
}

static int k8s_check(const struct config *cfg, char *why, size_t size)
{
	if (k8s_configured(cfg->kubeconfig))
		return 0;
	snprintf(why, size, "%s", K8S_NOT_CONFIGURED);
	return -ENOENT;
}

const struct actuator actuators[] = {
	{ "signal", "pidfd_open(2) and pidfd_send_signal(2): Linux 5.3", NULL, signal_check },
	{ "traffic", "sk_lookup, iter/tcp with the bpf_sock_destroy kfunc, cgroup/connect4, a sockmap",
	  &traffic_needs, NULL },
	{ "k8s", "an API client: in-cluster service account, or --kubeconfig", NULL, k8s_check },
};
const size_t actuators_count = ARRAY_SIZE(actuators);
_Static_assert(ARRAY_SIZE(actuators) <= REFLEX_ACTUATORS_MAX, "raise REFLEX_ACTUATORS_MAX");

const struct actuator *actuator_of(const char *action)
{
	size_t n = strcspn(action, ".");

	for (size_t i = 0; i < actuators_count; i++)
		if (strlen(actuators[i].name) == n && !strncmp(actuators[i].name, action, n))
			return &actuators[i];
	return NULL;
}

/* The host's side of the matrix. */
struct host {
	struct utsname uts;
	bool btf;
	const char *cgroup_mode;
	char cgroup2[256];   /* where cgroup2 is mounted, "" when nowhere */
};

static void read_host(struct host *h)
{
	struct statfs st;
	char line[1024];
	FILE *f;

	if (uname(&h->uts))
		memset(&h->uts, 0, sizeof(h->uts));
	h->btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	h->cgroup_mode = "none";
	if (statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC)
		h->cgroup_mode = "v2";
	else if (statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == TMPFS_MAGIC)
		h->cgroup_mode = statfs("/sys/fs/cgroup/unified", &st) == 0 &&
				 st.f_type == CGROUP2_SUPER_MAGIC ? "hybrid" : "v1";
	h->cgroup2[0] = '\0';
	f = fopen("/proc/self/mountinfo", "re");
	/* "36 35 0:30 / /sys/fs/cgroup rw,... - cgroup2 cgroup2 rw" */
	while (f && !h->cgroup2[0] && fgets(line, sizeof(line), f)) {
		char point[256], *dash = strstr(line, " - ");

		if (dash && !strncmp(dash, " - cgroup2 ", 11) &&
		    sscanf(line, "%*s %*s %*s %*s %255s", point) == 1)
			str_copy(h->cgroup2, sizeof(h->cgroup2), point);
	}
	if (f)
		fclose(f);
}

/* A component: works or not, and for a BPF one, each need probed. */
struct verdict {
	const char *name;
	bool works;
	char why[1024];
	const struct kernel_needs *bpf;
	const char *needs;   /* not BPF: for people */
	unsigned kinds;      /* a sensor's condition kinds */
};

static void judge_bpf(struct verdict *v, const char *name, const struct kernel_needs *n)
{
	int err;

	v->name = name;
	v->bpf = n;
	if (probe_forced_down(name, v->why, sizeof(v->why)))
		return;
	probe_capture_begin(v->why, sizeof(v->why));
	err = probe_load(n);
	probe_capture_end();
	if (err && !v->why[0])
		snprintf(v->why, sizeof(v->why), "%s", strerror(-err));
	v->works = !err;
}

/* libbpf can probe a type or helper: 1 yes, 0 no, -1 not by type (tracing
 * programs need a BTF target to load at all; the object load decides). */
static int prog_supported(enum bpf_prog_type t)
{
	if (t == BPF_PROG_TYPE_TRACING || t == BPF_PROG_TYPE_EXT || t == BPF_PROG_TYPE_LSM ||
	    t == BPF_PROG_TYPE_STRUCT_OPS)
		return -1;
	return libbpf_probe_bpf_prog_type(t, NULL) > 0;
}

static int helper_supported(const struct kernel_helper *h)
{
	int rc = libbpf_probe_bpf_helper(h->prog, h->id, NULL);

	return rc < 0 ? -1 : rc > 0;
}

static bool kfunc_present(const struct btf *vmlinux, const char *name)
{
	return vmlinux && btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) > 0;
}

static const char *yes_no(int v)
{
	return v < 0 ? "?" : v ? "yes" : "NO";
}

static void json_tri(struct sbuf *b, int v)
{
	sbuf_puts(b, v < 0 ? "null" : v ? "true" : "false");
}

static void print_text(const struct host *h, const struct verdict *v, size_t n, size_t nsensors,
		       const struct btf *vmlinux)
{
	printf("kernel   %s %s (%s)\n", h->uts.release, h->uts.version, h->uts.machine);
	printf("BTF      %s\n", h->btf ? "yes (/sys/kernel/btf/vmlinux)" : "NO: CO-RE programs cannot load");
	printf("cgroup   %s%s%s\n", h->cgroup_mode, h->cgroup2[0] ? ", cgroup2 at " : ", no cgroup2 mount",
	       h->cgroup2);
	printf("\n%-9s %-12s %-5s %s\n", "", "", "works", "why not");
	for (size_t i = 0; i < n; i++)
		printf("%-9s %-12s %-5s %s\n", i < nsensors ? "sensor" : "actuator", v[i].name,
		       v[i].works ? "yes" : "NO", v[i].works ? "" : v[i].why);
	for (size_t i = 0; i < n; i++) {
		const struct kernel_needs *k = v[i].bpf;

		printf("\n%s (%s): needs %s\n", v[i].name, v[i].works ? "works" : "does not work",
		       k ? k->kernel : v[i].needs);
		if (!k)
			continue;
		printf("  attach    %s\n  programs ", k->attach);
		for (size_t j = 0; j < KERNEL_NEEDS_MAX && k->progs[j]; j++)
			printf(" %s:%s", libbpf_bpf_prog_type_str(k->progs[j]), yes_no(prog_supported(k->progs[j])));
		printf("\n  maps     ");
		for (size_t j = 0; j < KERNEL_NEEDS_MAX && k->maps[j]; j++)
			printf(" %s:%s", libbpf_bpf_map_type_str(k->maps[j]),
			       yes_no(libbpf_probe_bpf_map_type(k->maps[j], NULL) > 0));
		printf("\n  helpers  ");
		for (size_t j = 0; j < KERNEL_NEEDS_MAX && k->helpers[j].name; j++)
			printf(" %s:%s", k->helpers[j].name, yes_no(helper_supported(&k->helpers[j])));
		for (size_t j = 0; j < ARRAY_SIZE(k->kfuncs) && k->kfuncs[j]; j++)
			printf("%s %s:%s", j ? "" : "\n  kfuncs   ", k->kfuncs[j],
			       yes_no(kfunc_present(vmlinux, k->kfuncs[j])));
		printf("\n");
	}
	printf("\n(yes/NO: libbpf's probe; ?: not probeable by type, the load decides)\n");
}

static void print_json(const struct host *h, const struct verdict *v, size_t n, size_t nsensors,
		       const struct btf *vmlinux)
{
	char *out = malloc(1 << 16);
	struct sbuf b;

	if (!out)
		return;
	sbuf_init(&b, out, 1 << 16);
	sbuf_puts(&b, "{\"kernel\":{\"release\":");
	sbuf_json_str(&b, h->uts.release);
	sbuf_puts(&b, ",\"version\":");
	sbuf_json_str(&b, h->uts.version);
	sbuf_puts(&b, ",\"machine\":");
	sbuf_json_str(&b, h->uts.machine);
	sbuf_printf(&b, "},\"btf\":%s,\"cgroup\":{\"mode\":", h->btf ? "true" : "false");
	sbuf_json_str(&b, h->cgroup_mode);
	sbuf_puts(&b, ",\"cgroup2\":");
	if (h->cgroup2[0])
		sbuf_json_str(&b, h->cgroup2);
	else
		sbuf_puts(&b, "null");
	sbuf_puts(&b, "},\"sensors\":[");
	for (size_t i = 0; i < n; i++) {
		const struct kernel_needs *k = v[i].bpf;

		if (i == nsensors)
			sbuf_puts(&b, "],\"actuators\":[");
		else if (i)
			sbuf_puts(&b, ",");
		sbuf_puts(&b, "{\"name\":");
		sbuf_json_str(&b, v[i].name);
		sbuf_printf(&b, ",\"works\":%s,\"why\":", v[i].works ? "true" : "false");
		if (v[i].works)
			sbuf_puts(&b, "null");
		else
			sbuf_json_str(&b, v[i].why);
		sbuf_puts(&b, ",\"needs\":");
		sbuf_json_str(&b, k ? k->kernel : v[i].needs);
		if (i < nsensors) {
			sbuf_puts(&b, ",\"conditions\":[");
			for (int kind = 0, first = 1; kind < REFLEX_COND_KIND_COUNT; kind++)
				if (v[i].kinds & (1u << kind)) {
					sbuf_puts(&b, first ? "" : ",");
					sbuf_json_str(&b, condition_kind_name((enum condition_kind)kind));
					first = 0;
				}
			sbuf_puts(&b, "]");
		}
		if (k) {
			sbuf_puts(&b, ",\"attach\":");
			sbuf_json_str(&b, k->attach);
			sbuf_puts(&b, ",\"programs\":[");
			for (size_t j = 0; j < KERNEL_NEEDS_MAX && k->progs[j]; j++) {
				sbuf_printf(&b, "%s{\"type\":\"%s\",\"supported\":", j ? "," : "",
					    libbpf_bpf_prog_type_str(k->progs[j]));
				json_tri(&b, prog_supported(k->progs[j]));
				sbuf_puts(&b, "}");
			}
			sbuf_puts(&b, "],\"maps\":[");
			for (size_t j = 0; j < KERNEL_NEEDS_MAX && k->maps[j]; j++) {
				sbuf_printf(&b, "%s{\"type\":\"%s\",\"supported\":", j ? "," : "",
					    libbpf_bpf_map_type_str(k->maps[j]));
				json_tri(&b, libbpf_probe_bpf_map_type(k->maps[j], NULL) > 0);
				sbuf_puts(&b, "}");
			}
			sbuf_puts(&b, "],\"helpers\":[");
			for (size_t j = 0; j < KERNEL_NEEDS_MAX && k->helpers[j].name; j++) {
				sbuf_printf(&b, "%s{\"name\":\"%s\",\"program\":\"%s\",\"supported\":", j ? "," : "",
					    k->helpers[j].name, libbpf_bpf_prog_type_str(k->helpers[j].prog));
				json_tri(&b, helper_supported(&k->helpers[j]));
				sbuf_puts(&b, "}");
			}
			sbuf_puts(&b, "],\"kfuncs\":[");
			for (size_t j = 0; j < ARRAY_SIZE(k->kfuncs) && k->kfuncs[j]; j++)
				sbuf_printf(&b, "%s{\"name\":\"%s\",\"present\":%s}", j ? "," : "", k->kfuncs[j],
					    kfunc_present(vmlinux, k->kfuncs[j]) ? "true" : "false");
			sbuf_puts(&b, "]");
		}
		sbuf_puts(&b, "}");
	}
	sbuf_puts(&b, "]}\n");
	fputs(out, stdout);
	free(out);
}

int probe_main(const struct config *cfg)
{
	struct verdict v[REFLEX_SENSORS_MAX + REFLEX_ACTUATORS_MAX] = { 0 };
	struct btf *vmlinux;
	struct host h;
	size_t n = 0;

	read_host(&h);
	/* a failed load's reason is in the report; libbpf's whole account
	 * (the verifier's log) only with --log-level debug */
	if (log_threshold >= LOG_DEBUG)
		log_route_libbpf();
	else
		(void)libbpf_set_print(NULL);
	for (size_t i = 0; i < sensors_count; i++, n++) {
		judge_bpf(&v[n], sensors[i]->name, &sensors[i]->needs);
		v[n].kinds = sensors[i]->kinds;
	}
	for (size_t i = 0; i < actuators_count; i++, n++) {
		const struct actuator *a = &actuators[i];

		if (a->bpf) {
			judge_bpf(&v[n], a->name, a->bpf);
			continue;
		}
		v[n].name = a->name;
		v[n].needs = a->needs;
		if (!probe_forced_down(a->name, v[n].why, sizeof(v[n].why)))
			v[n].works = a->check(cfg, v[n].why, sizeof(v[n].why)) == 0;
	}
	vmlinux = btf__load_vmlinux_btf();
	if (cfg->json)
		print_json(&h, v, n, sensors_count, vmlinux);
	else
		print_text(&h, v, n, sensors_count, vmlinux);
	btf__free(vmlinux);
	return fflush(stdout) ? 1 : 0;
}
