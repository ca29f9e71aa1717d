#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
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
	if (read_file(path, buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(t->comm, sizeof(t->comm), "%.*s", (int)sizeof(t->comm) - 1, buf);
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		snprintf(t->exe, sizeof(t->exe), "%.*s", (int)sizeof(t->exe) - 1, buf);
	}
	read_cgroup(pid, t->cgroup, sizeof(t->cgroup));
	return 0;
}
