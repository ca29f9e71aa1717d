#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/kubeconfig.h"
#include "lib/util.h"

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 text (a kubeconfig's *-data fields) into a new string. */
static char *b64_decode(const char *s)
{
	char *out = malloc(strlen(s) * 3 / 4 + 4), *o = out;
	unsigned bits = 0, acc = 0;

	if (!out)
		return NULL;
	for (; *s && *s != '='; s++) {
		int v = b64_value(*s);

		if (v < 0) {
			free(out);
			errno = EINVAL;
			return NULL;
		}
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (char)(acc >> bits);
		}
	}
	*o = '\0';
	return out;
}

void kubeconfig_free(struct kubeconfig *kc)
{
	for (size_t i = 0; i < kc->n; i++)
		free(kc->e[i].value);
	free(kc->e);
}

static int kubeconfig_add(struct kubeconfig *kc, const char *section, int item,
			  const char *path, const char *value)
{
	struct kubeconfig_entry *e = realloc(kc->e, (kc->n + 1) * sizeof(*e));
	size_t n = strlen(value);

	if (!e)
		return -ENOMEM;
	kc->e = e;
	e = &kc->e[kc->n];
	str_copy(e->section, sizeof(e->section), section);
	e->item = item;
	str_copy(e->path, sizeof(e->path), path);
	if (n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0])
		e->value = strndup(value + 1, n - 2);
	else
		e->value = strdup(value);
	if (!e->value)
		return -ENOMEM;
	kc->n++;
	return 0;
}

int kubeconfig_parse(const char *text, struct kubeconfig *kc, const char *file,
			    char *err, size_t errlen)
{
	struct {
		int indent;
		char key[48];
	} stack[8];
	char section[16] = "", *line = NULL;
	size_t cap = 0;
	int depth = 0, item = -1, lineno = 0, rc = 0;

	while (*text) {
		size_t n = strcspn(text, "\n");
		char *key, *value, path[96] = "";
		int indent;

		lineno++;
		/* each line whole: certificate data is one long base64 line */
		if (n + 1 > cap) {
			char *grown = realloc(line, n + 1);

			if (!grown) {
				rc = -ENOMEM;
				break;
			}
			line = grown;
			cap = n + 1;
		}
		memcpy(line, text, n);
		line[n] = '\0';
		key = line;
		text += n + (text[n] == '\n');
		line[strcspn(line, "\r")] = '\0';
		key += strspn(key, " ");
		if (!*key || *key == '#')
			continue;
		if (key[0] == '-' && (key[1] == ' ' || !key[1])) {
			/* the next item of the section's list */
			item++;
			depth = 0;
			key += 1 + strspn(key + 1, " ");
			if (!*key)
				continue;
		}
		indent = (int)(key - line);
		value = strstr(key, ": ");
		if (!value && key[strlen(key) - 1] == ':')
			value = key + strlen(key) - 1;
		if (!value) {
			snprintf(err, errlen, "%s:%d: not a 'key: value' line", file, lineno);
			rc = -EINVAL;
			break;
		}
		*value++ = '\0';
		value += strspn(value, " ");
		if (indent == 0) {
			str_copy(section, sizeof(section), key);
			depth = 0;
			item = -1;
			if (*value && kubeconfig_add(kc, "", 0, key, value)) {
				rc = -ENOMEM;
				break;
			}
			continue;
		}
		while (depth > 0 && stack[depth - 1].indent >= indent)
			depth--;
		for (int i = 0; i < depth; i++)
			snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s.", stack[i].key);
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s", key);
		if (*value) {
			if (kubeconfig_add(kc, section, item, path, value)) {
				rc = -ENOMEM;
				break;
			}
		} else if (depth < (int)ARRAY_SIZE(stack)) {
			stack[depth].indent = indent;
			str_copy(stack[depth].key, sizeof(stack[depth].key), key);
			depth++;
		}
	}
	free(line);
	return rc;
}

const char *kubeconfig_get(const struct kubeconfig *kc, const char *section,
				  const char *name, const char *path)
{
	int item = -1;

	if (!name) {
		item = 0;
		section = "";
	}
	for (size_t i = 0; i < kc->n && item < 0; i++)
		if (!strcmp(kc->e[i].section, section) && !strcmp(kc->e[i].path, "name") &&
		    !strcmp(kc->e[i].value, name))
			item = kc->e[i].item;
	for (size_t i = 0; i < kc->n && item >= 0; i++)
		if (!strcmp(kc->e[i].section, section) && kc->e[i].item == item &&
		    !strcmp(kc->e[i].path, path))
			return kc->e[i].value;
	return NULL;
}

int kubeconfig_path(const char *dir, const char *name, char *out, size_t size)
{
	int n = name[0] == '/' ? snprintf(out, size, "%s", name) : snprintf(out, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int kubeconfig_file_or_data(const struct kubeconfig *kc, const char *section, const char *name,
			  const char *field, const char *dir, char **file, char **pem)
{
	char key[96], path[1024];
	const char *v;

	snprintf(key, sizeof(key), "%s-data", field);
	v = kubeconfig_get(kc, section, name, key);
	if (v) {
		*pem = b64_decode(v);
		return *pem ? 0 : -EINVAL;
	}
	snprintf(key, sizeof(key), "%s", field);
	v = kubeconfig_get(kc, section, name, key);
	if (!v)
		return 0;
	if (kubeconfig_path(dir, v, path, sizeof(path)))
		return -EINVAL;
	*file = strdup(path);
	return *file ? 0 : -ENOMEM;
}

