#ifndef REFLEX_LIB_UTIL_H
#define REFLEX_LIB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* a macro's value as a string literal */
#define STRINGIFY(x) STRINGIFY_(x)
#define STRINGIFY_(x) #x
#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL

/* "500ms", "2s", "1m30s", "1h", "0": 0 or -EINVAL. */
int duration_parse(const char *s, uint64_t *ns);
/* Shortest readable form: "250ms", "2.1s", "5m". */
void duration_format(uint64_t ns, char *buf, size_t size);

uint64_t clock_mono_ns(void);
int64_t clock_real_ns(void);
/* A CLOCK_MONOTONIC instant (bpf_ktime_get_ns) as wall-clock time. */
int64_t mono_to_real_ns(uint64_t mono);
/* RFC 3339 UTC with milliseconds: 2026-11-22T01:02:03.123Z */
void time_format(int64_t real_ns, char *buf, size_t size);

/* A time-ordered unique id (UUIDv7 text form, 36 chars). */
void uuid_v7(char out[37]);

/* The hex SHA-256 of data (libcrypto): 0 or -EIO. */
int sha256_hex(const void *data, size_t len, char out[65]);

/* Appends into a fixed buffer; text past the end is cut and remembered. */
struct sbuf {
	char *s;
	size_t size;
	size_t len;
	bool truncated;
};

void sbuf_init(struct sbuf *b, char *s, size_t size);
void sbuf_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends n bytes of s, s, or v in decimal: as sbuf_printf, without the
 * cost of a format. sbuf_put and sbuf_puts are inline: JSON and messages
 * are written a few bytes at a time, mostly literals, whose copy is then a
 * few moves (the length is known when compiling, but for the rare cut). */
static inline void sbuf_put(struct sbuf *b, const char *s, size_t n)
{
	size_t room = b->size - 1 - b->len;

	if (n <= room) {
		memcpy(b->s + b->len, s, n);
		b->len += n;
	} else {
		memcpy(b->s + b->len, s, room);
		b->len += room;
		b->truncated = true;
	}
	b->s[b->len] = '\0';
}

static inline void sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_put(b, s, strlen(s));
}

void sbuf_int(struct sbuf *b, long long v);

/* Appends s as a JSON string literal, quotes included. */
void sbuf_json_str(struct sbuf *b, const char *s);

/* fnmatch(pattern, s, 0) == 0, fast for patterns of only * and ?. */
bool glob_match(const char *pattern, const char *s);

/* Copies src into dst (size bytes), cut to fit and always terminated. */
void str_copy(char *dst, size_t size, const char *src);

/* A growable list of owned strings. */
struct strlist {
	char **v;
	size_t n;
};

int strlist_add(struct strlist *l, const char *s);
void strlist_free(struct strlist *l);

/* Reads a whole small file into buf (NUL-terminated): bytes read or
 * -errno. A FIFO reads as what is in it now, without waiting for a writer.
 * No fstat: it reads /proc files by the thousand (a syscall is ~1 µs on a
 * VM); who reads a path a user gives checks it is a regular file. */
ssize_t read_file(const char *path, char *buf, size_t size);
/* Reads len bytes at addr in process pid's memory: 0, or -EFAULT. */
int read_process_memory(pid_t pid, uint64_t addr, void *buf, size_t len);

#endif
