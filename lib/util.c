/* Small helpers every part of reflexd uses: durations, clocks, ids, text. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/text.h"
#include "lib/util.h"

int duration_parse(const char *s, uint64_t *ns)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} units[] = {
		{ "ms", NSEC_PER_MSEC }, { "us", 1000 }, { "ns", 1 },
		{ "s", NSEC_PER_SEC },   { "m", 60 * NSEC_PER_SEC },
		{ "h", 3600 * NSEC_PER_SEC }, { "d", 86400 * NSEC_PER_SEC },
	};
	uint64_t total = 0;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	while (*s) {
		uint64_t n = 0;
		size_t i;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		while (*s >= '0' && *s <= '9') {
			if (n > UINT64_MAX / 10 / NSEC_PER_SEC)
				return -EINVAL;
			n = n * 10 + (uint64_t)(*s++ - '0');
		}
		for (i = 0; i < ARRAY_SIZE(units); i++)
			if (strncmp(s, units[i].unit, strlen(units[i].unit)) == 0)
				break;
		if (i == ARRAY_SIZE(units))
			return -EINVAL;
		s += strlen(units[i].unit);
		if (n > (UINT64_MAX - total) / units[i].ns)
			return -EINVAL;
		total += n * units[i].ns;
	}
	*ns = total;
	return 0;
}

void duration_format(uint64_t ns, char *buf, size_t size)
{
	static const struct {
		uint64_t ns;
		char suffix;
	} units[] = { { NSEC_PER_SEC, 's' }, { 60 * NSEC_PER_SEC, 'm' }, { 3600 * NSEC_PER_SEC, 'h' } };
	size_t i = 0;
	uint64_t tenths;
	struct sbuf b;

	/* without a format: the guards write one of these for every decision
	 * they refuse */
	sbuf_init(&b, buf, size);
	if (ns < NSEC_PER_SEC) {
		sbuf_int(&b, (long long)(ns / NSEC_PER_MSEC));
		sbuf_puts(&b, "ms");
		return;
	}
	/* one decimal, rounded, in whole numbers */
	while (i + 1 < ARRAY_SIZE(units) && ns >= units[i + 1].ns)
		i++;
	tenths = (ns * 10 + units[i].ns / 2) / units[i].ns;
	sbuf_int(&b, (long long)(tenths / 10));
	sbuf_puts(&b, ".");
	sbuf_int(&b, (long long)(tenths % 10));
	sbuf_put(&b, &units[i].suffix, 1);
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * (int64_t)NSEC_PER_SEC + ts.tv_nsec;
}

uint64_t clock_mono_ns(void)
{
	return (uint64_t)clock_ns(CLOCK_MONOTONIC);
}

int64_t clock_real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int64_t mono_to_real_ns(uint64_t mono)
{
	return clock_real_ns() - (int64_t)clock_mono_ns() + (int64_t)mono;
}

/* n in width digits at p, zero-padded. */
static char *put_digits(char *p, unsigned n, int width)
{
	for (int i = width - 1; i >= 0; i--, n /= 10)
		p[i] = (char)('0' + n % 10);
	return p + width;
}

/* Days from 1 January of year 0 to 1 January of year y (y >= 0), in the
 * proleptic Gregorian calendar. */
static int64_t days_to_year(int64_t y)
{
	return 365 * y + (y + 3) / 4 - (y + 99) / 100 + (y + 399) / 400;
}

/* The UTC date of a day counted from 1970-01-01 (negative before; an
 * int64_t of nanoseconds stays within years 1677 to 2262). */
static void utc_date(int64_t days, int64_t *year, unsigned *month, unsigned *mday)
{
	static const unsigned short before_month[2][13] = {
		{ 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365 },
		{ 0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366 },
	};
	int64_t d = days + days_to_year(1970), y = d * 400 / 146097, doy;
	unsigned m = 0;
	bool leap;

	/* 146097 days make 400 years: y is the year, or one off */
	while (days_to_year(y) > d)
		y--;
	while (days_to_year(y + 1) <= d)
		y++;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	doy = d - days_to_year(y);
	while (doy >= before_month[leap][m + 1])
		m++;
	*year = y;
	*month = m + 1;
	*mday = (unsigned)(doy - before_month[leap][m]) + 1;
}

void time_format(int64_t real_ns, char *buf, size_t size)
{
	int64_t secs = real_ns / (int64_t)NSEC_PER_SEC, days, year;
	unsigned month, mday, in_day;
	char out[32], *p = out;

	/* "%Y-%m-%dT%H:%M:%S.mmmZ" by hand, without gmtime_r (it takes a
	 * lock): audit and simulate print one per decision. Measured: the
	 * simulator benchmark (100k conditions, --json) takes 845 M
	 * instructions, 947 M (+12 %) with gmtime_r and strftime (callgrind,
	 * docs/benchmarks.md). tests/fuzz/fuzz_time checks it against them. */
	days = secs / 86400 - (secs % 86400 < 0);
	in_day = (unsigned)(secs - days * 86400);
	utc_date(days, &year, &month, &mday);
	p = put_digits(p, (unsigned)year % 10000, 4);
	*p++ = '-';
	p = put_digits(p, month, 2);
	*p++ = '-';
	p = put_digits(p, mday, 2);
	*p++ = 'T';
	p = put_digits(p, in_day / 3600, 2);
	*p++ = ':';
	p = put_digits(p, in_day / 60 % 60, 2);
	*p++ = ':';
	p = put_digits(p, in_day % 60, 2);
	*p++ = '.';
	p = put_digits(p, (unsigned)(real_ns % (int64_t)NSEC_PER_SEC / (int64_t)NSEC_PER_MSEC), 3);
	*p++ = 'Z';
	*p = '\0';
	str_copy(buf, size, out);
}

/* Random bytes from a pool refilled 4 KiB at a time: one syscall per
 * 400 ids, not one per id. */
static void random_bytes(unsigned char *out, size_t n)
{
	static unsigned char pool[4096];
	static size_t left;

	if (left < n) {
		if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool))
			memset(pool, 0, sizeof(pool)); /* cannot happen after boot */
		left = sizeof(pool);
	}
	memcpy(out, pool + sizeof(pool) - left, n);
	left -= n;
}

void uuid_v7(char out[37])
{
	uint64_t ms = (uint64_t)clock_real_ns() / NSEC_PER_MSEC;
	unsigned char b[16];

	random_bytes(b + 6, 10);
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
	for (int i = 0, o = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = "0123456789abcdef"[b[i] >> 4];
		out[o++] = "0123456789abcdef"[b[i] & 15];
	}
	out[36] = '\0';
}

void sbuf_init(struct sbuf *b, char *s, size_t size)
{
	b->s = s;
	b->size = size;
	b->len = 0;
	b->truncated = false;
	if (size)
		s[0] = '\0';
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	size_t room = b->size - b->len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->s + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room) {
		b->len = b->size - 1;
		b->truncated = true;
	} else {
		b->len += (size_t)n;
	}
}

void sbuf_int(struct sbuf *b, long long v)
{
	/* two digits a step: a time in nanoseconds has nineteen. Measured:
	 * the simulator benchmark takes 845 M instructions, 1107 M (+31 %)
	 * with snprintf("%lld") (callgrind, docs/benchmarks.md).
	 * tests/fuzz/fuzz_int checks it against snprintf. */
	static const char pairs[201] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	char digits[24], *p = digits + sizeof(digits);
	unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;

	for (; u >= 100; u /= 100) {
		p -= 2;
		memcpy(p, pairs + 2 * (u % 100), 2);
	}
	if (u >= 10) {
		p -= 2;
		memcpy(p, pairs + 2 * u, 2);
	} else {
		*--p = (char)('0' + u);
	}
	if (v < 0)
		*--p = '-';
	sbuf_put(b, p, (size_t)(digits + sizeof(digits) - p));
}

/* The bytes a JSON string cannot hold as they are, the bytes of UTF-8
 * sequences (checked one by one), and the NUL that ends the C string:
 * everything between them is copied in runs. */
static const bool json_special[256] = {
	[0 ... 0x1f] = true, ['"'] = true, ['\\'] = true, [0x80 ... 0xff] = true,
};

void sbuf_json_str(struct sbuf *b, const char *s)
{
	sbuf_put(b, "\"", 1);
	for (;;) {
		size_t plain = 0, n;
		unsigned char c;

		while (!json_special[(unsigned char)s[plain]])
			plain++;
		sbuf_put(b, s, plain);
		s += plain;
		if (!(c = (unsigned char)*s))
			break;
		if (c >= 0x80) {
			/* JSON is UTF-8: a byte that is not part of a valid
			 * sequence becomes the text \xhh (lib/text.h) */
			if ((n = text_utf8_seq((const unsigned char *)s)))
				sbuf_put(b, s, n);
			else
				sbuf_printf(b, "\\\\x%02x", c);
			s += n ? n : 1;
			continue;
		}
		if (c == '"' || c == '\\')
			sbuf_printf(b, "\\%c", c);
		else if (c == '\n')
			sbuf_put(b, "\\n", 2);
		else
			sbuf_printf(b, "\\u%04x", c);
		s++;
	}
	sbuf_put(b, "\"", 1);
}

int read_process_memory(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

ssize_t read_file(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	/* non-blocking: opening a FIFO for reading waits for a writer (it
	 * reads as empty instead) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	while ((size_t)total < size - 1) {
		n = read(fd, buf + total, size - 1 - (size_t)total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			total = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		total += n;
	}
	buf[total] = '\0';
cleanup:
	close(fd);
	return total;
}

int strlist_add(struct strlist *l, const char *s)
{
	char **grown = realloc(l->v, (l->n + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	l->v = grown;
	l->v[l->n] = strdup(s);
	if (!l->v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

void strlist_free(struct strlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

bool glob_match(const char *pattern, const char *string)
{
	const char *p = pattern, *s = string, *star = NULL, *resume = NULL;

	while (*s) {
		/* brackets and escapes: the full matcher */
		if (*p == '[' || *p == '\\')
			return fnmatch(pattern, string, 0) == 0;
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p == '?' || *p == *s) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	if (*p == '[' || *p == '\\')
		return fnmatch(pattern, string, 0) == 0;
	return !*p;
}

void str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}
