#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

#define JSON_DEPTH_MAX 64

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			if (++p >= end)
				return NULL;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (p + i >= end || !strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || !*p) {
				return NULL;
			}
		}
	}
	return NULL;
}

/* The end of the run of digits at p, or NULL when there is none. */
static const char *skip_digits(const char *p, const char *end)
{
	const char *start = p;

	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p == start ? NULL : p;
}

/* -?digits(.digits)?([eE][+-]?digits)? */
static const char *skip_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (!(p = skip_digits(p, end)))
		return NULL;
	if (p < end && *p == '.' && !(p = skip_digits(p + 1, end)))
		return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		p = skip_digits(p, end);
	}
	return p;
}

static const char *skip_word(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(end - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

/* The value at p (no leading space) into v; the end of it, or NULL when
 * it is malformed. */
static const char *scan_value(const char *p, const char *end, int depth, struct json_val *v)
{
	const char *q = NULL;

	if (p >= end || depth > JSON_DEPTH_MAX)
		return NULL;
	switch (*p) {
	case '"':
		v->type = JSON_STRING;
		q = skip_string(p, end);
		break;
	case 't':
		v->type = JSON_BOOL;
		q = skip_word(p, end, "true");
		break;
	case 'f':
		v->type = JSON_BOOL;
		q = skip_word(p, end, "false");
		break;
	case 'n':
		v->type = JSON_NULL;
		q = skip_word(p, end, "null");
		break;
	case '[':
	case '{': {
		bool object = *p == '{';
		char close = object ? '}' : ']';
		struct json_val item;

		v->type = object ? JSON_OBJECT : JSON_ARRAY;
		q = skip_ws(p + 1, end);
		if (q < end && *q == close) {
			q++;
			break;
		}
		for (;;) {
			if (object) {
				if (q >= end || *q != '"' || !(q = skip_string(q, end)))
					return NULL;
				q = skip_ws(q, end);
				if (q >= end || *q != ':')
					return NULL;
				q = skip_ws(q + 1, end);
			}
			q = scan_value(q, end, depth + 1, &item);
			if (!q)
				return NULL;
			q = skip_ws(q, end);
			if (q < end && *q == ',') {
				q = skip_ws(q + 1, end);
				continue;
			}
			if (q < end && *q == close) {
				q++;
				break;
			}
			return NULL;
		}
		break;
	}
	default:
		v->type = JSON_NUMBER;
		q = skip_number(p, end);
	}
	if (!q)
		return NULL;
	v->p = p;
	v->n = (size_t)(q - p);
	return q;
}

int json_parse(const char *text, size_t len, struct json_val *out)
{
	const char *end = text + len, *p = skip_ws(text, end);

	memset(out, 0, sizeof(*out));
	p = scan_value(p, end, 0, out);
	if (!p || skip_ws(p, end) != end) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	return 0;
}

bool json_next(const struct json_val *c, struct json_val *it, struct json_val *key)
{
	const char *end, *p;
	struct json_val k = { 0 };

	if (c->type != JSON_OBJECT && c->type != JSON_ARRAY)
		return false;
	end = c->p + c->n - 1; /* the closing bracket */
	p = it->p ? it->p + it->n : c->p + 1;
	p = skip_ws(p, end);
	if (it->p && p < end && *p == ',')
		p = skip_ws(p + 1, end);
	if (p >= end)
		return false;
	if (c->type == JSON_OBJECT) {
		if (!scan_value(p, end, 0, &k) || k.type != JSON_STRING)
			return false;
		p = skip_ws(k.p + k.n, end);
		p = skip_ws(p + 1, end); /* the ':' */
	}
	if (!scan_value(p, end, 0, it))
		return false;
	if (key)
		*key = k;
	return true;
}

/* Whether string value v equals the n bytes at s. */
static bool key_eq(const struct json_val *v, const char *s, size_t n)
{
	char buf[256];

	if (!memchr(v->p, '\\', v->n))
		return v->n == n + 2 && memcmp(v->p + 1, s, n) == 0;
	return n < sizeof(buf) && json_str(v, buf, sizeof(buf)) == 0 && strlen(buf) == n &&
	       memcmp(buf, s, n) == 0;
}

int json_get(const struct json_val *v, const char *path, struct json_val *out)
{
	struct json_val cur = *v;

	while (*path) {
		size_t n = strcspn(path, ".");
		struct json_val it = { 0 }, key;
		bool found = false;

		if (cur.type == JSON_ARRAY) {
			char *end;
			unsigned long want = strtoul(path, &end, 10);

			if (end != path + n)
				return -ENOENT;
			for (unsigned long i = 0; !found && json_next(&cur, &it, NULL); i++)
				found = i == want;
		} else {
			while (!found && json_next(&cur, &it, &key))
				found = key_eq(&key, path, n);
		}
		if (!found)
			return -ENOENT;
		cur = it;
		path += n + (path[n] == '.');
	}
	*out = cur;
	return 0;
}

static int hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v = v * 16 + (c >= '0' && c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

int json_str(const struct json_val *v, char *buf, size_t size)
{
	const char *p, *end;
	size_t o = 0;
	int rc = 0;

	if (size)
		buf[0] = '\0';
	if (v->type != JSON_STRING || !size)
		return -EINVAL;
	end = v->p + v->n - 1;
	for (p = v->p + 1; p < end; p++) {
		char enc[4];
		size_t k = 1;

		enc[0] = *p;
		if (*p == '\\') {
			p++;
			switch (*p) {
			case 'b': enc[0] = '\b'; break;
			case 'f': enc[0] = '\f'; break;
			case 'n': enc[0] = '\n'; break;
			case 'r': enc[0] = '\r'; break;
			case 't': enc[0] = '\t'; break;
			case 'u': {
				uint32_t cp = (uint32_t)hex4(p + 1);

				p += 4;
				/* a surrogate pair is one code point; a lone half is U+FFFD */
				if (cp >= 0xd800 && cp < 0xdc00 && end - p > 6 && p[1] == '\\' && p[2] == 'u') {
					uint32_t lo = (uint32_t)hex4(p + 3);

					if (lo >= 0xdc00 && lo < 0xe000) {
						cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						p += 6;
					}
				}
				if (cp >= 0xd800 && cp < 0xe000)
					cp = 0xfffd;
				if (cp < 0x80) {
					enc[0] = (char)cp;
				} else if (cp < 0x800) {
					enc[0] = (char)(0xc0 | cp >> 6);
					enc[1] = (char)(0x80 | (cp & 0x3f));
					k = 2;
				} else if (cp < 0x10000) {
					enc[0] = (char)(0xe0 | cp >> 12);
					enc[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
					enc[2] = (char)(0x80 | (cp & 0x3f));
					k = 3;
				} else {
					enc[0] = (char)(0xf0 | cp >> 18);
					enc[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
					enc[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
					enc[3] = (char)(0x80 | (cp & 0x3f));
					k = 4;
				}
				break;
			}
			default: enc[0] = *p;
			}
		}
		if (o + k >= size) {
			rc = -ENOSPC;
			break;
		}
		memcpy(buf + o, enc, k);
		o += k;
	}
	buf[o] = '\0';
	return rc;
}

void json_get_str(const struct json_val *v, const char *path, char *buf, size_t size)
{
	struct json_val s;

	if (json_get(v, path, &s) || json_str(&s, buf, size) == -EINVAL)
		buf[0] = '\0';
}

int json_num(const struct json_val *v, double *out)
{
	char buf[64];

	if (v->type != JSON_NUMBER || v->n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v->p, v->n);
	buf[v->n] = '\0';
	*out = strtod(buf, NULL);
	return 0;
}

bool json_str_eq(const struct json_val *v, const char *s)
{
	return v->type == JSON_STRING && key_eq(v, s, strlen(s));
}
