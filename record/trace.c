#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "record/trace.h"

#define TRACE_LINE_MAX (REFLEX_EVIDENCE_MAX + 2048)
#define TRACE_READ_BUFFER (256 * 1024)

static int bad(struct trace_reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(struct trace_reader *r, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(r->err, sizeof(r->err), "%s:%d: %s", r->path, r->line, msg);
	return -EINVAL;
}

int trace_open(struct trace_reader *r, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->path = path;
	r->f = fopen(path, "re");
	if (!r->f) {
		snprintf(r->err, sizeof(r->err), "%s: %s", path, strerror(errno));
		return -errno;
	}
	/* traces run to gigabytes: fewer, larger reads */
	r->buf = malloc(TRACE_READ_BUFFER);
	if (r->buf)
		(void)setvbuf(r->f, r->buf, _IOFBF, TRACE_READ_BUFFER);
	return 0;
}

void trace_close(struct trace_reader *r)
{
	if (!r)
		return;
	if (r->f)
		fclose(r->f);
	r->f = NULL;
	free(r->buf);
	r->buf = NULL;
}

/* Decimal digits only, no overflow: 0 or -EINVAL. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t n = 0;

	if (!*s)
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++)
		if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, (uint64_t)(*s - '0'), &n))
			return -EINVAL;
	*out = n;
	return *s ? -EINVAL : 0;
}

/* Seconds with up to 9 decimals, "2.5" or "12": 0, -EINVAL, or -ERANGE
 * past TRACE_SECONDS_MAX. */
static int parse_seconds(const char *s, uint64_t *ns)
{
	uint64_t whole = 0, frac = 0;
	const char *p = s;
	int decimals = 0;
	bool range = true;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > TRACE_SECONDS_MAX) {
			range = false;
			whole = 0;
		}
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, decimals++) {
			if (decimals == 9)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*p - '0');
		}
	}
	/* to nanoseconds */
	for (; decimals < 9; decimals++)
		frac *= 10;
	if (*p)
		return -EINVAL;
	if (!range)
		return -ERANGE;
	*ns = whole * NSEC_PER_SEC + frac;
	return 0;
}

/* Whether word is name, or s begins with prefix: strcmp and strncmp for
 * the few bytes of a trace's keywords, where a call into the C library
 * costs more than the comparison (a long trace makes tens of millions). */
static bool is_word(const char *word, const char *name)
{
	while (*name && *word == *name)
		word++, name++;
	return *word == *name;
}

static bool has_prefix(const char *s, const char *prefix)
{
	while (*prefix && *s == *prefix)
		s++, prefix++;
	return !*prefix;
}

static char *skip_blanks(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* What ends a bare word: a blank, a quote, the end of the line. */
static const bool word_end[256] = { ['\0'] = true, [' '] = true, ['\t'] = true, ['"'] = true };

/* Splits off the next word of *p (a bare word, or key="quoted \"text\"");
 * quotes and escapes are removed in place. NULL at the end of the line. */
static char *next_word(char **p, bool *unterminated)
{
	char *s = skip_blanks(*p), *out, *word;
	bool quoted = false;

	*unterminated = false;
	if (!*s)
		return NULL;
	word = s;
	/* most words have no quotes: no copying then */
	while (!word_end[(unsigned char)*s])
		s++;
	if (*s != '"') {
		if (*s)
			*s++ = '\0';
		*p = s;
		return word;
	}
	s = out = word;
	for (; *s && (quoted || (*s != ' ' && *s != '\t')); s++) {
		if (*s == '"') {
			quoted = !quoted;
		} else if (quoted && *s == '\\' && s[1] == 'x' && isxdigit((unsigned char)s[2]) &&
			   isxdigit((unsigned char)s[3])) {
			char hex[3] = { s[2], s[3], '\0' };

			*out++ = (char)strtoul(hex, NULL, 16);
			s += 3;
		} else if (quoted && *s == '\\' && s[1]) {
			*out++ = *++s;
		} else {
			*out++ = *s;
		}
	}
	*unterminated = quoted;
	if (*s)
		s++;
	*out = '\0';
	*p = s;
	return word;
}

/* The fields of a raise that are not the target's text, most common first:
 * every line of a long trace looks its keys up here. */
enum raise_field { FIELD_PID, FIELD_START, FIELD_TID, FIELD_KERNEL_THREAD, FIELD_SINCE, FIELD_SUMMARY };

static const char *const raise_fields[] = {
	[FIELD_PID] = "pid", [FIELD_START] = "start", [FIELD_TID] = "tid",
	[FIELD_KERNEL_THREAD] = "kernel_thread", [FIELD_SINCE] = "since", [FIELD_SUMMARY] = "summary",
};

static int set_field(struct trace_reader *r, struct condition *c, uint64_t t_ns,
		     int64_t *since_ns, const char *key, const char *value)
{
	struct target *tg = &c->target;
	size_t f = 0;
	uint64_t n;

	while (f < ARRAY_SIZE(raise_fields) && !is_word(key, raise_fields[f]))
		f++;
	if (f == ARRAY_SIZE(raise_fields)) {
		for (size_t i = 0; i < target_text_fields_count; i++)
			if (is_word(key, target_text_fields[i].key)) {
				str_copy((char *)tg + target_text_fields[i].offset, target_text_fields[i].size, value);
				return 0;
			}
		return bad(r, "unknown field '%s' (known: pid, tid, start, comm, exe, command, cgroup, container_id, "
			   "pod_uid, pod, namespace, container, labels, kernel_thread, since, summary, evidence)", key);
	}
	switch ((enum raise_field)f) {
	case FIELD_PID:
	case FIELD_TID:
	case FIELD_START:
		if (parse_u64(value, &n) || (f != FIELD_START && (n == 0 || n > 0x7fffffff)))
			return bad(r, "%s=%s is not a valid number", key, value);
		if (f == FIELD_PID)
			tg->pid = (pid_t)n;
		else if (f == FIELD_TID)
			tg->tid = (pid_t)n;
		else
			tg->start_time = n;
		break;
	case FIELD_KERNEL_THREAD:
		if (strcmp(value, "true") && strcmp(value, "false"))
			return bad(r, "kernel_thread must be true or false, not '%s'", value);
		tg->kernel_thread = !strcmp(value, "true");
		break;
	case FIELD_SINCE: {
		uint64_t since;
		int rc;

		rc = parse_seconds(value + (*value == '-'), &since);
		if (rc == -ERANGE)
			return bad(r, "since=%s: time out of range (at most %llu seconds)", value, TRACE_SECONDS_MAX);
		if (rc || (*value != '-' && since > t_ns))
			return bad(r, "since=%s must be seconds on the trace clock, not after the event", value);
		*since_ns = *value == '-' ? -(int64_t)since : (int64_t)since;
		break;
	}
	case FIELD_SUMMARY:
		str_copy(c->summary, sizeof(c->summary), value);
		break;
	}
	return 0;
}

static int parse_raise(struct trace_reader *r, char *rest, struct trace_event *ev)
{
	struct condition *c = &ev->cond;
	bool open_quote;
	char *word;
	int kind;

	word = next_word(&rest, &open_quote);
	if (!word)
		return bad(r, "raise needs a condition kind, e.g. 'raise 1 deadlock pid=42'");
	kind = condition_kind_parse(word);
	if (kind < 0)
		return bad(r, "unknown condition kind '%s'", word);
	c->kind = (enum condition_kind)kind;
	ev->since_ns = (int64_t)ev->t_ns;
	for (;;) {
		char *eq;

		rest = skip_blanks(rest);
		/* evidence is JSON and takes the rest of the line */
		if (has_prefix(rest, "evidence=")) {
			rest += 9;
			if (rest[0] != '{' || rest[strlen(rest) - 1] != '}')
				return bad(r, "evidence must be a JSON object and the last field");
			if (strlen(rest) >= sizeof(c->evidence))
				return bad(r, "evidence longer than %d bytes", REFLEX_EVIDENCE_MAX - 1);
			strcpy(c->evidence, rest);
			break;
		}
		word = next_word(&rest, &open_quote);
		if (!word)
			break;
		if (open_quote)
			return bad(r, "unterminated quote in '%s'", word);
		for (eq = word; *eq && *eq != '='; eq++)
			;
		if (!*eq)
			return bad(r, "expected key=value, got '%s'", word);
		*eq = '\0';
		if (set_field(r, c, ev->t_ns, &ev->since_ns, word, eq + 1))
			return -EINVAL;
	}
	if (!c->target.pid)
		return bad(r, "raise needs pid=");
	return 0;
}

static int parse_header(struct trace_reader *r, char *line)
{
	bool open_quote;
	char *word = next_word(&line, &open_quote);
	char *version = next_word(&line, &open_quote);
	char *end;
	long v;

	if (!word || strcmp(word, "reflexd-trace") || !version)
		return bad(r, "not a reflexd trace: the first line must be 'reflexd-trace %d'",
			   REFLEX_TRACE_VERSION);
	v = strtol(version, &end, 10);
	if (*end || v != REFLEX_TRACE_VERSION)
		return bad(r, "unsupported trace version '%s' (this reflexd reads %d)", version,
			   REFLEX_TRACE_VERSION);
	while ((word = next_word(&line, &open_quote))) {
		uint64_t start;
		int rc = strncmp(word, "start=", 6) ? -EINVAL : parse_seconds(word + 6, &start);

		if (rc == -ERANGE)
			return bad(r, "%s: time out of range (at most %llu seconds)", word, TRACE_SECONDS_MAX);
		if (rc)
			return bad(r, "unknown header field '%s' (known: start=UNIX_SECONDS)", word);
		r->start_ns = (int64_t)start;
	}
	r->header_read = true;
	return 0;
}

/* The next line of f into line (TRACE_LINE_MAX bytes), NUL-terminated,
 * without its newline: its length; TRACE_LINE_MAX - 1 for a line too long
 * (read on to its end); -EILSEQ for a NUL byte in it; -1 at the end.
 * fgets leaves a line with a NUL byte, like a line cut short, without a
 * newline where strlen ends; only after a NUL byte is there a newline
 * further on among what it wrote (the first there is the line's own: it
 * stops at it, and a buffer it filled has none). The last line of a file
 * without a newline is read as far as strlen goes. fgets and strlen, not
 * a loop of getc: 0.74 against 0.79 s of user time for simulate --json
 * on 1M conditions. */
static long read_line(FILE *f, char *line)
{
	size_t len;
	int c;

	if (!fgets(line, TRACE_LINE_MAX, f))
		return -1;
	len = strlen(line);
	if (len && line[len - 1] == '\n') {
		line[--len] = '\0';
		return (long)len;
	}
	if (feof(f) || ferror(f))
		return (long)len;
	if (memchr(line + len, '\n', TRACE_LINE_MAX - 1 - len))
		return -EILSEQ;
	while ((c = fgetc(f)) != EOF && c != '\n')
		;
	return TRACE_LINE_MAX - 1;
}

int trace_next(struct trace_reader *r, struct trace_event *ev)
{
	static char line[TRACE_LINE_MAX];
	long len;

	while ((len = read_line(r->f, line)) != -1) {
		char *p = line, *word;
		bool open_quote;
		uint64_t id;
		int rc;

		r->line++;
		if (len == -EILSEQ)
			return bad(r, "a NUL byte in the line");
		if (len >= TRACE_LINE_MAX - 1)
			return bad(r, "line longer than %d bytes", TRACE_LINE_MAX - 2);
		while (len && line[len - 1] == '\r')
			line[--len] = '\0';
		p = skip_blanks(p);
		if (!*p || *p == '#')
			continue;
		/* without a valid header nothing after it can be read */
		if (!r->header_read)
			return parse_header(r, p) ? -ENOTSUP : trace_next(r, ev);
		ev->kind = 0;
		ev->t_ns = 0;
		ev->since_ns = 0;
		word = next_word(&p, &open_quote);
		rc = parse_seconds(word, &ev->t_ns);
		if (rc == -ERANGE)
			return bad(r, "time %s out of range (at most %llu seconds)", word, TRACE_SECONDS_MAX);
		if (rc)
			return bad(r, "expected a time in seconds, got '%s'", word);
		if (ev->t_ns < r->last_t_ns)
			return bad(r, "time %s is before the previous event's", word);
		word = next_word(&p, &open_quote);
		if (!word)
			return bad(r, "expected raise, clear or end after the time");
		if (is_word(word, "raise")) {
			ev->kind = TRACE_RAISE;
		} else if (is_word(word, "clear")) {
			ev->kind = TRACE_CLEAR;
		} else if (is_word(word, "end")) {
			ev->kind = TRACE_END;
			r->last_t_ns = ev->t_ns;
			return 1;
		} else {
			return bad(r, "unknown event '%s' (raise, clear, end)", word);
		}
		word = next_word(&p, &open_quote);
		if (!word || parse_u64(word, &id) || !id)
			return bad(r, "expected a condition id (a positive number) after %s",
				   ev->kind == TRACE_RAISE ? "raise" : "clear");
		/* only a raise fills the condition: a clear has just its id */
		if (ev->kind == TRACE_RAISE)
			condition_reset(&ev->cond);
		ev->cond.id = id;
		if (ev->kind == TRACE_RAISE && parse_raise(r, p, ev))
			return -EINVAL;
		if (ev->kind == TRACE_CLEAR && next_word(&p, &open_quote))
			return bad(r, "clear takes only the condition id");
		r->last_t_ns = ev->t_ns;
		return 1;
	}
	if (ferror(r->f)) {
		snprintf(r->err, sizeof(r->err), "%s: %s", r->path, strerror(errno));
		return -EIO;
	}
	if (!r->header_read) {
		bad(r, "empty trace: the first line must be 'reflexd-trace %d'", REFLEX_TRACE_VERSION);
		return -ENOTSUP;
	}
	return 0;
}

/* A value as a bare word when it can be one, else quoted with escapes. */
static void write_value(FILE *f, const char *key, const char *v)
{
	const unsigned char *u = (const unsigned char *)v;
	bool bare = *v;

	for (const unsigned char *p = u; *p && bare; p++)
		bare = *p > ' ' && *p != 0x7f && *p != '"' && *p != '\\';
	if (bare) {
		fprintf(f, " %s=%s", key, v);
		return;
	}
	/* a control character (a comm may hold a newline) as \xhh: the
	 * line stays one line and the bytes come back as they were */
	fprintf(f, " %s=\"", key);
	for (; *u; u++) {
		if (*u < ' ' || *u == 0x7f)
			fprintf(f, "\\x%02x", *u);
		else if (*u == '"' || *u == '\\')
			fprintf(f, "\\%c", *u);
		else
			fputc(*u, f);
	}
	fputc('"', f);
}

static void write_seconds(FILE *f, int64_t ns)
{
	uint64_t a = (uint64_t)(ns < 0 ? -ns : ns);

	fprintf(f, "%s%llu.%09llu", ns < 0 ? "-" : "", (unsigned long long)(a / NSEC_PER_SEC),
		(unsigned long long)(a % NSEC_PER_SEC));
}

void trace_write_header(FILE *f, int64_t start_real_ns)
{
	fprintf(f, "reflexd-trace %d start=%lld.%09lld\n", REFLEX_TRACE_VERSION,
		(long long)(start_real_ns / (int64_t)NSEC_PER_SEC),
		(long long)(start_real_ns % (int64_t)NSEC_PER_SEC));
}

void trace_write_raise(FILE *f, uint64_t t_ns, int64_t since_ns, const struct condition *c)
{
	const struct target *t = &c->target;

	write_seconds(f, (int64_t)t_ns);
	fprintf(f, " raise %llu %s pid=%d", (unsigned long long)c->id, condition_kind_name(c->kind),
		t->pid);
	if (t->tid)
		fprintf(f, " tid=%d", t->tid);
	fprintf(f, " start=%llu", (unsigned long long)t->start_time);
	if (t->kernel_thread)
		fprintf(f, " kernel_thread=true");
	for (size_t i = 0; i < target_text_fields_count; i++) {
		const char *v = (const char *)t + target_text_fields[i].offset;

		if (*v)
			write_value(f, target_text_fields[i].key, v);
	}
	fprintf(f, " since=");
	write_seconds(f, since_ns);
	write_value(f, "summary", c->summary);
	if (c->evidence[0])
		fprintf(f, " evidence=%s", c->evidence);
	fputc('\n', f);
}

void trace_write_clear(FILE *f, uint64_t t_ns, uint64_t id)
{
	write_seconds(f, (int64_t)t_ns);
	fprintf(f, " clear %llu\n", (unsigned long long)id);
}
