/* A small JSON reader for server replies (the Kubernetes API): find a
 * value by a dotted path, read it as a string or a number, walk arrays and
 * objects. No tree is built: a value is a span of the original text. Every
 * span is checked before it is used, so any input is safe (fuzzed). */
#ifndef REFLEX_LIB_JSON_H
#define REFLEX_LIB_JSON_H

#include <stdbool.h>
#include <stddef.h>

enum json_type { JSON_NONE, JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_val {
	enum json_type type;
	const char *p;   /* the value's text, quotes and brackets included */
	size_t n;
};

/* The whole document as a value: 0, or -EINVAL when it is not one
 * well-formed JSON value (nesting deeper than 64 counts as malformed). */
int json_parse(const char *text, size_t len, struct json_val *out);
/* The value at path under v: object keys and array indexes separated by
 * dots ("metadata.uid", "items.0.metadata.name"; "" is v itself). 0, or
 * -ENOENT. A key that itself holds dots is reached with json_next. */
int json_get(const struct json_val *v, const char *path, struct json_val *out);
/* Members of an object or elements of an array, in order: *it starts
 * zeroed; each call gives the next (key is set for objects). true while
 * there is one. */
bool json_next(const struct json_val *container, struct json_val *it, struct json_val *key);
/* A string value unescaped into buf (cut to size, always terminated): 0,
 * -EINVAL when v is not a string, -ENOSPC when it was cut. */
int json_str(const struct json_val *v, char *buf, size_t size);
/* The string at path under v into buf, or "" when it is missing or not a
 * string: a convenience for optional fields. */
void json_get_str(const struct json_val *v, const char *path, char *buf, size_t size);
/* A number value: 0 or -EINVAL. */
int json_num(const struct json_val *v, double *out);
/* v is a string equal to s. */
bool json_str_eq(const struct json_val *v, const char *s);

#endif
