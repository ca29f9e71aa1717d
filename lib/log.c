/* Leveled logging to stderr, one line per message. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "lib/log.h"
#include "lib/text.h"

enum log_level log_threshold = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *name)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

/* Lines logged while held, each its level byte, its text and a NUL. The
 * buffer grows as needed (a component's start at --log-level debug holds
 * libbpf's whole account of it) up to LOG_HELD_MAX; lines past that are
 * counted, never printed out of order. */
#define LOG_HELD_MAX (8u << 20)
static struct {
	bool on;
	char *buf;
	size_t len, size;
	unsigned overflow;
} held;

static bool held_fits(size_t n)
{
	size_t size = held.size ? held.size : 16384;
	char *grown;

	if (held.len + n <= held.size)
		return true;
	if (held.len + n > LOG_HELD_MAX)
		return false;
	while (size < held.len + n)
		size *= 2;
	grown = realloc(held.buf, size);
	if (!grown)
		return false;
	held.buf = grown;
	held.size = size;
	return true;
}

/* A message may echo bytes from the host (a comm, a rule name): unless
 * raw (libbpf's own text, whose verifier log spans lines), it is written
 * as text, control characters escaped, so that it stays one line and
 * cannot drive the reader's terminal. */
static void log_vmsg(enum log_level level, bool raw, const char *fmt, va_list ap)
{
	char line[2048], text[2048];
	struct sbuf b;
	size_t n;

	if (level > log_threshold)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (!raw) {
		sbuf_init(&b, text, sizeof(text));
		sbuf_text(&b, line, TEXT_CONTROLS);
		n = strlen(text);
	}
	if (held.on) {
		if (!held_fits(n + 2)) {
			held.overflow++;
			return;
		}
		held.buf[held.len++] = (char)level;
		memcpy(held.buf + held.len, raw ? line : text, n + 1);
		held.len += n + 1;
		return;
	}
	fprintf(stderr, "reflexd: %s: %s\n", level_names[level], raw ? line : text);
}

void log_hold(void)
{
	held.on = true;
	held.len = 0;
	held.overflow = 0;
}

void log_release(bool failed, char *first_error, size_t size)
{
	if (first_error)
		first_error[0] = '\0';
	held.on = false;
	for (size_t i = 0; i < held.len;) {
		enum log_level level = (enum log_level)held.buf[i];
		const char *line = held.buf + i + 1;

		if (failed && level == LOG_ERROR && first_error && !first_error[0])
			snprintf(first_error, size, "%s", line);
		if (!failed || log_threshold >= LOG_DEBUG)
			fprintf(stderr, "reflexd: %s: %s\n", level_names[failed ? LOG_DEBUG : level], line);
		i += strlen(line) + 2;
	}
	free(held.buf);
	held.buf = NULL;
	held.len = held.size = 0;
	if (held.overflow)
		log_msg(LOG_DEBUG, "(%u lines not kept)", held.overflow);
	held.overflow = 0;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, false, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static const enum log_level map[] = {
		[LIBBPF_WARN] = LOG_WARN,
		[LIBBPF_INFO] = LOG_DEBUG,
		[LIBBPF_DEBUG] = LOG_DEBUG,
	};

	log_vmsg(map[level], true, fmt, ap);
	return 0;
}

void log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
