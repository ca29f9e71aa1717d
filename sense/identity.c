#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "sense/identity.h"

#define PF_KTHREAD 0x00200000

/* Parses /proc/<pid>/stat after the comm, whose parentheses may nest. */
static int stat_fields(pid_t pid, unsigned long *flags, uint64_t *start_time)
{
	char path[64], buf[1024], *p;
	unsigned long long start;
	unsigned long fl;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	p = strrchr(buf, ')');
	/* fields 3..22 after ") ": state ppid pgrp session tty tpgid flags ... starttime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %lu %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &fl, &start) != 2)
		return -EIO;
	if (flags)
		*flags = fl;
	*start_time = start;
	return 0;
}

int identity_start_time(pid_t pid, uint64_t *start_time)
{
	return stat_fields(pid, NULL, start_time);
}

/* The cgroup2 path ("0::/..."), else the v1 name=systemd hierarchy. */
static void read_cgroup(pid_t pid, char *out, size_t size)
{
	char path[64], buf[4096], *line, *save = NULL, *v1 = NULL;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "0::", 3) == 0) {
			snprintf(out, size, "%s", line + 3);
			return;
		}
		if (!v1 && strstr(line, ":name=systemd:"))
			v1 = strstr(line, ":name=systemd:") + strlen(":name=systemd:");
	}
	if (v1)
		snprintf(out, size, "%s", v1);
}

/* All of s[0..n) is lowercase hex. */
static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* A pod uid: a UUID (8-4-4-4-12, dashes or, in systemd slice names,
 * underscores) or the 32-hex config hash a static pod runs under. Copied
 * into uid with dashes. */
static bool take_pod_uid(const char *s, size_t n, char uid[40])
{
	static const int dash[] = { 8, 13, 18, 23 };

	if (n == 32 && all_hex(s, n)) {
		memcpy(uid, s, n);
		uid[n] = '\0';
		return true;
	}
	if (n != 36)
		return false;
	for (size_t i = 0, d = 0; i < n; i++) {
		if (d < ARRAY_SIZE(dash) && (int)i == dash[d]) {
			if (s[i] != '-' && s[i] != '_')
				return false;
			uid[i] = '-';
			d++;
		} else if (!all_hex(s + i, 1)) {
			return false;
		} else {
			uid[i] = s[i];
		}
	}
	uid[n] = '\0';
	return true;
}

/* The pod uid in one path component: "pod<uid>" (cgroupfs driver) or
 * "kubepods-<qos>-pod<uid_>.slice" (systemd driver; kind and k3s add a
 * "kubelet-" prefix). */
static bool component_pod_uid(const char *c, size_t n, char uid[40])
{
	const char *p;

	if (n > 3 && strncmp(c, "pod", 3) == 0 && take_pod_uid(c + 3, n - 3, uid))
		return true;
	if (n < 6 || strncmp(c + n - 6, ".slice", 6) != 0)
		return false;
	n -= 6;
	for (p = c + n - 4; p >= c; p--)
		if (strncmp(p, "-pod", 4) == 0)
			return take_pod_uid(p + 4, (size_t)(c + n - p - 4), uid);
	return false;
}

/* The container id in one path component: 64 hex, bare (cgroupfs driver,
 * "/docker/<id>") or as a runtime's scope ("cri-containerd-<id>.scope",
 * "crio-<id>.scope", "docker-<id>.scope", "libpod-<id>.scope",
 * "cri-dockerd-<id>.scope"). A conmon scope ("crio-conmon-<id>.scope") is
 * the runtime's monitor, not the container. */
static bool component_container_id(const char *c, size_t n, char id[72])
{
	static const char *const prefixes[] = {
		"cri-containerd-", "crio-", "docker-", "libpod-", "cri-dockerd-", "",
	};

	if (n > 6 && strncmp(c + n - 6, ".scope", 6) == 0)
		n -= 6;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		size_t len = strlen(prefixes[i]);

		if (n == len + 64 && strncmp(c, prefixes[i], len) == 0 && all_hex(c + len, 64)) {
			memcpy(id, c + len, 64);
			id[64] = '\0';
			return true;
		}
	}
	return false;
}

void identity_parse_cgroup(const char *path, char container_id[72], char pod_uid[40])
{
	const char *c = path;

	container_id[0] = pod_uid[0] = '\0';
	while (*c) {
		size_t n = strcspn(c, "/");

		/* containerd under a systemd-driven kubelet, but with its own
		 * cgroup path: "<pod slice>:cri-containerd:<id>" in one component */
		for (const char *part = c; part < c + n;) {
			size_t len = strcspn(part, "/:");
			char uid[40], id[72];

			if (len > (size_t)(c + n - part))
				len = (size_t)(c + n - part);
			if (component_pod_uid(part, len, uid))
				memcpy(pod_uid, uid, sizeof(uid));
			/* the innermost wins: docker-in-docker and kind nest a node's
			 * kubepods tree inside a container's cgroup */
			else if (component_container_id(part, len, id))
				memcpy(container_id, id, sizeof(id));
			part += len + (part[len] == ':');
		}
		c += n + (c[n] == '/');
	}
}

int identity_read(pid_t pid, struct target *t)
{
	char path[64], buf[PATH_MAX];
	unsigned long flags;
	ssize_t n;
	int err;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	err = stat_fields(pid, &flags, &t->start_time);
	if (err)
		return err;
	t->kernel_thread = flags & PF_KTHREAD;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if ((n = read_file(path, buf, sizeof(buf))) > 0) {
		/* the kernel ends it with one newline; a comm may hold others */
		if (buf[n - 1] == '\n')
			buf[n - 1] = '\0';
		snprintf(t->comm, sizeof(t->comm), "%.*s", (int)sizeof(t->comm) - 1, buf);
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		snprintf(t->exe, sizeof(t->exe), "%.*s", (int)sizeof(t->exe) - 1, buf);
	}
	/* argv[0]: cmdline's first NUL-terminated string (empty for a
	 * kernel thread or a zombie) */
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	n = read_file(path, buf, sizeof(buf));
	if (n > 0)
		snprintf(t->command, sizeof(t->command), "%.*s", (int)strnlen(buf, (size_t)n), buf);
	read_cgroup(pid, t->cgroup, sizeof(t->cgroup));
	identity_parse_cgroup(t->cgroup, t->container_id, t->pod_uid);
	return 0;
}
