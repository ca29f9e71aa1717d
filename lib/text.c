/* Bytes from the host as text: UTF-8 validation and the one escape every
 * exit uses (lib/text.h, docs/journal.md). */
#include <stdarg.h>
#include <stdlib.h>

#include "lib/text.h"

size_t text_utf8_seq(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xBF;

	if (s[0] < 0x80)
		return 1;
	if (s[0] < 0xC2 || s[0] > 0xF4)
		return 0; /* a continuation byte, an overlong lead, past U+10FFFF */
	if (s[0] < 0xE0)
		return s[1] >= 0x80 && s[1] <= 0xBF ? 2 : 0;
	if (s[0] == 0xE0)
		lo = 0xA0; /* overlong */
	else if (s[0] == 0xED)
		hi = 0x9F; /* UTF-16 surrogates */
	else if (s[0] == 0xF0)
		lo = 0x90; /* overlong */
	else if (s[0] == 0xF4)
		hi = 0x8F; /* past U+10FFFF */
	/* a NUL is never in range: the checks stop at the end of s */
	if (s[1] < lo || s[1] > hi || s[2] < 0x80 || s[2] > 0xBF)
		return 0;
	if (s[0] < 0xF0)
		return 3;
	return s[3] >= 0x80 && s[3] <= 0xBF ? 4 : 0;
}

/* Whether the character of n bytes at s is written as an escape. */
static bool text_escaped(const unsigned char *s, size_t n, unsigned flags)
{
	if (!n)
		return true;
	if (!(flags & TEXT_CONTROLS))
		return false;
	if (n == 1)
		return s[0] < 0x20 || s[0] == 0x7F;
	return n == 2 && s[0] == 0xC2 && s[1] < 0xA0; /* C1: U+0080 to U+009F */
}

/* Appends n bytes of whole characters, or as many whole ones as fit. */
static void text_put(struct sbuf *b, const unsigned char *s, size_t n)
{
	size_t room = b->size - 1 - b->len;

	if (n > room) {
		n = room;
		while (n && (s[n] & 0xC0) == 0x80)
			n--;
		b->truncated = true;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* The length of the run at s that is copied as it is. Printable ASCII,
 * nearly all of what reflexd writes, is passed over a byte at a time. */
static size_t text_plain(const unsigned char *s, unsigned flags)
{
	size_t plain = 0, n;

	for (;;) {
		while (s[plain] >= 0x20 && s[plain] < 0x7f)
			plain++;
		if (!s[plain] || text_escaped(s + plain, n = text_utf8_seq(s + plain), flags))
			return plain;
		plain += n;
	}
}

void sbuf_text(struct sbuf *b, const char *str, unsigned flags)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;

	while (*s && !b->truncated) {
		size_t plain = text_plain(s, flags);
		char esc[6];
		size_t len = 0;

		text_put(b, s, plain);
		s += plain;
		if (!*s || b->truncated)
			break;
		/* one byte as an escape: a control character of two bytes (C1)
		 * takes two turns, an invalid byte one */
		esc[len++] = '\\';
		if (flags & TEXT_IN_JSON)
			esc[len++] = '\\';
		if (*s == '\n' || *s == '\t' || *s == '\r') {
			esc[len++] = *s == '\n' ? 'n' : *s == '\t' ? 't' : 'r';
		} else {
			esc[len++] = 'x';
			esc[len++] = hex[*s >> 4];
			esc[len++] = hex[*s & 15];
		}
		if (len > b->size - 1 - b->len) {
			b->truncated = true;
			break;
		}
		sbuf_put(b, esc, len);
		s++;
		/* the second byte of a C1 control is a continuation byte:
		 * text_utf8_seq says 0 for it, so it is escaped next turn */
	}
}

bool text_is_clean(const char *str, unsigned flags)
{
	const unsigned char *s = (const unsigned char *)str;

	return !s[text_plain(s, flags)];
}

void text_print(FILE *f, const char *fmt, ...)
{
	char small[512], *line = small, *out = NULL;
	struct sbuf b;
	va_list ap;
	int n;

	/* a table row fits the stack: no allocation on the common path */
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(small)) {
		va_start(ap, fmt);
		n = vasprintf(&line, fmt, ap);
		va_end(ap);
	}
	if (n < 0)
		return;
	if (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (text_is_clean(line, TEXT_CONTROLS)) {
		fputs(line, f);
		fputc('\n', f);
	} else if ((out = malloc(4 * (size_t)n + 1))) {
		/* at worst every byte becomes four; out of memory, nothing unsafe */
		sbuf_init(&b, out, 4 * (size_t)n + 1);
		sbuf_text(&b, line, TEXT_CONTROLS);
		fputs(out, f);
		fputc('\n', f);
	}
	free(out);
	if (line != small)
		free(line);
}
