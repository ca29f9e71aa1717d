/* The exporter's settings: the options, else the OTEL_* variables of the
 * OTLP exporter specification (docs/otlp.md). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/http.h"
#include "record/otlp.h"
#include "opentelemetry/proto/logs/v1/logs.pb-c.h"

/* Percent-decodes s in place (the W3C baggage form the OTEL_* lists use):
 * 0, or -EINVAL when a byte decodes to NUL, which would cut the value. */
static int percent_decode(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
			char hex[3] = { s[1], s[2], 0 };

			*out = (char)strtol(hex, NULL, 16);
			if (!*out++)
				return -EINVAL;
			s += 2;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
	return 0;
}

/* An HTTP field name is a token (RFC 9110 5.1, tchar); a value has no
 * control character but tab (5.5): a CR or LF would start a header of
 * the caller's choosing. The reason in err, naming from. */
static int header_check(const char *from, const char *name, const char *value, char *err, size_t errlen)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	size_t shown = 0;

	/* a message shows the name up to a line break, never across it */
	while (name[shown] && !iscntrl((unsigned char)name[shown]))
		shown++;
	for (const char *c = name; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr(tchar, *c)) {
			snprintf(err, errlen, "%s: header name '%.*s' has a character HTTP does not allow in a name "
				 "(0x%02x)", from, (int)shown, name, (unsigned char)*c);
			return -EINVAL;
		}
	}
	for (const char *c = value; *c; c++) {
		if (iscntrl((unsigned char)*c) && *c != '\t') {
			snprintf(err, errlen, "%s: the value of header '%s' has a control character (0x%02x): "
				 "refused, it could inject a header", from, name, (unsigned char)*c);
			return -EINVAL;
		}
	}
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Sets key to value in a "key=value" list, replacing an earlier one. */
static int kv_set(struct strlist *l, const char *key, const char *value, const char *sep)
{
	size_t k = strlen(key);
	char *line;

	if (asprintf(&line, "%s%s%s", key, sep, value) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		if (!strncmp(l->v[i], key, k) && !strncmp(l->v[i] + k, sep, strlen(sep))) {
			free(l->v[i]);
			l->v[i] = line;
			return 0;
		}
	}
	if (strlist_add(l, line)) {
		free(line);
		return -ENOMEM;
	}
	free(line);
	return 0;
}

/* "k1=v1,k2=v2" (values percent-encoded) into l as "k<sep>v": 0, or
 * -EINVAL naming what. headers: each pair must make a valid HTTP header. */
static int parse_pairs(const char *what, const char *text, struct strlist *l, const char *sep,
		       bool headers, char *err, size_t errlen)
{
	char *copy = strdup(text), *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, ",", &save); !rc && item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *key, *value;

		if (!*trim(item))
			continue;
		if (!eq) {
			snprintf(err, errlen, "%s: '%s' is not key=value", what, trim(item));
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		key = trim(item);
		value = trim(eq + 1);
		if (percent_decode(value)) {
			snprintf(err, errlen, "%s: the value of '%s' decodes to a NUL byte (%%00)", what, key);
			rc = -EINVAL;
			break;
		}
		if (!*key) {
			snprintf(err, errlen, "%s: an empty key in '%s'", what, text);
			rc = -EINVAL;
			break;
		}
		if (headers && (rc = header_check(what, key, value, err, errlen)))
			break;
		rc = kv_set(l, key, value, sep);
	}
	free(copy);
	return rc;
}

/* The first of (option, logs variable, general variable) that is set, and
 * its name for messages. */
static const char *pick(const char *option, const char *option_name, const char *var,
			const char **from)
{
	static char name[64];
	const char *v;

	if (option) {
		*from = option_name;
		return option;
	}
	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_LOGS_%s", var);
	if ((v = getenv(name)) && *v) {
		*from = name;
		return v;
	}
	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s", var);
	if ((v = getenv(name)) && *v) {
		*from = name;
		return v;
	}
	return NULL;
}

/* A TLS file named by from: readable now, or the reason in err. */
static int tls_file(const char *path, const char *from, char **out, char *err, size_t errlen)
{
	if (!path)
		return 0;
	if (access(path, R_OK)) {
		snprintf(err, errlen, "%s: %s: %s", from, path, strerror(errno));
		return -EINVAL;
	}
	*out = strdup(path);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int url_ok(const char *url)
{
	return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

/* base/v1/logs, with one slash between (an empty base, --otlp-endpoint '',
 * is then no URL: its last byte was once read from before the string) */
static void logs_url(char *url, size_t size, const char *base)
{
	size_t n = strlen(base);

	snprintf(url, size, "%s%sv1/logs", base, n && base[n - 1] == '/' ? "" : "/");
}

/* The endpoint: a logs URL as is, or a base URL with v1/logs; its source
 * into *from. 1, 0 when none is set, or -EINVAL. */
static int endpoint(const struct otlp_config *cfg, struct otlp_settings *s, const char **from,
		    char *err, size_t errlen)
{
	const char *v;

	if (cfg->otlp_logs_endpoint) {
		snprintf(s->url, sizeof(s->url), "%s", cfg->otlp_logs_endpoint);
		*from = "--otlp-logs-endpoint";
	} else if (cfg->otlp_endpoint) {
		logs_url(s->url, sizeof(s->url), cfg->otlp_endpoint);
		*from = "--otlp-endpoint";
	} else if ((v = getenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")) && *v) {
		snprintf(s->url, sizeof(s->url), "%s", v);
		*from = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
	} else if ((v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v) {
		logs_url(s->url, sizeof(s->url), v);
		*from = "OTEL_EXPORTER_OTLP_ENDPOINT";
	} else {
		return 0;
	}
	if (strlen(s->url) == sizeof(s->url) - 1) {
		snprintf(err, errlen, "%s: the URL is longer than %zu bytes", *from, sizeof(s->url) - 2);
		return -EINVAL;
	}
	if (!url_ok(s->url)) {
		snprintf(err, errlen, "%s: '%s' is not an http:// or https:// URL", *from, s->url);
		return -EINVAL;
	}
	return 1;
}

/* How requests go: the protocol (OTLP/HTTP only: protobuf sent to a gRPC
 * port would fail every request), the timeout and the compression. */
static int transport(const struct otlp_config *cfg, struct otlp_settings *s, char *err, size_t errlen)
{
	const char *v, *from = "";

	if ((v = pick(NULL, NULL, "PROTOCOL", &from)) && strcmp(v, "http/protobuf")) {
		if (!strcmp(v, "grpc")) {
			snprintf(err, errlen, "%s: protocol 'grpc' is not supported: reflexd exports OTLP/HTTP "
				 "(http/protobuf or http/json; a collector's OTLP/HTTP port is 4318)", from);
			return -EINVAL;
		}
		if (strcmp(v, "http/json")) {
			snprintf(err, errlen, "%s: protocol '%s' is not grpc, http/protobuf or http/json", from, v);
			return -EINVAL;
		}
		s->json = true;
	}
	s->timeout_ns = 10 * NSEC_PER_SEC;
	if (cfg->otlp_timeout_ns) {
		s->timeout_ns = cfg->otlp_timeout_ns;
	} else if ((v = pick(NULL, NULL, "TIMEOUT", &from))) {
		char *end;
		long ms = strtol(v, &end, 10);

		if (*end || ms < 0 || ms > 600000) {
			snprintf(err, errlen, "%s: timeout '%s' is not a number of milliseconds (0: no limit, "
				 "or 1 to 600000)", from, v);
			return -EINVAL;
		}
		/* the specification's 0: no limit */
		s->timeout_ns = ms ? (uint64_t)ms * NSEC_PER_MSEC : HTTP_TIMEOUT_NONE;
	}
	if ((v = pick(cfg->otlp_compression, "--otlp-compression", "COMPRESSION", &from))) {
		if (strcasecmp(v, "gzip") && strcasecmp(v, "none")) {
			snprintf(err, errlen, "%s: compression '%s' is not gzip or none", from, v);
			return -EINVAL;
		}
		s->gzip = !strcasecmp(v, "gzip");
	}
	return 0;
}

/* The request headers: the user's, then those reflexd sets (which replace
 * any of the user's by the same name); and the TLS files. */
static int headers_and_tls(const struct otlp_config *cfg, struct otlp_settings *s, char *err, size_t errlen)
{
	const char *v, *from = "";
	int rc;

	if ((v = pick(cfg->otlp_headers, "--otlp-headers", "HEADERS", &from)) &&
	    (rc = parse_pairs(from, v, &s->headers, ": ", true, err, errlen)))
		return rc;
	if (kv_set(&s->headers, "Content-Type", s->json ? "application/json" : "application/x-protobuf", ": ") ||
	    (s->gzip && kv_set(&s->headers, "Content-Encoding", "gzip", ": ")) ||
	    kv_set(&s->headers, "User-Agent", "reflexd/" REFLEX_VERSION, ": ")) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v = pick(cfg->otlp_certificate, "--otlp-certificate", "CERTIFICATE", &from);
	if ((rc = tls_file(v, from, &s->ca_file, err, errlen)))
		return rc;
	v = pick(cfg->otlp_client_certificate, "--otlp-client-certificate", "CLIENT_CERTIFICATE", &from);
	if ((rc = tls_file(v, from, &s->cert_file, err, errlen)))
		return rc;
	v = pick(cfg->otlp_client_key, "--otlp-client-key", "CLIENT_KEY", &from);
	if ((rc = tls_file(v, from, &s->key_file, err, errlen)))
		return rc;
	if (!s->cert_file != !s->key_file) {
		snprintf(err, errlen, "a client certificate needs its key, and a key its certificate "
			 "(--otlp-client-certificate and --otlp-client-key)");
		return -EINVAL;
	}
	return 0;
}

/* The resource: what reflexd knows, then the user's word on it. */
static int resource(const struct otlp_config *cfg, const char *host, struct otlp_settings *s,
		    char *err, size_t errlen)
{
	const char *v, *node = getenv("NODE_NAME");
	int rc = 0;

	if (kv_set(&s->resource, "service.name", "reflexd", "=") ||
	    kv_set(&s->resource, "service.version", REFLEX_VERSION, "=") ||
	    kv_set(&s->resource, "host.name", host, "=") ||
	    (node && *node && kv_set(&s->resource, "k8s.node.name", node, "="))) {
		rc = -ENOMEM;
		goto cleanup;
	}
	if ((v = getenv("OTEL_RESOURCE_ATTRIBUTES")) &&
	    (rc = parse_pairs("OTEL_RESOURCE_ATTRIBUTES", v, &s->resource, "=", false, err, errlen)))
		goto cleanup;
	if (cfg->resource_attributes &&
	    (rc = parse_pairs("--resource-attributes", cfg->resource_attributes, &s->resource, "=", false,
			      err, errlen)))
		goto cleanup;
	v = cfg->service_name ? cfg->service_name : getenv("OTEL_SERVICE_NAME");
	if (v && *v && kv_set(&s->resource, "service.name", v, "="))
		rc = -ENOMEM;
cleanup:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	return rc;
}

/* The batches and the volume controls. */
static int limits(const struct otlp_config *cfg, struct otlp_settings *s, char *err, size_t errlen)
{
	const char *v = cfg->otlp_severity_floor ? cfg->otlp_severity_floor : "INFO";

	s->batch = (size_t)cfg->otlp_batch;
	s->batch_delay_ns = cfg->otlp_batch_delay_ns;
	s->retry_max_ns = cfg->otlp_retry_max_ns;
	s->backlog_max = (uint64_t)cfg->export_backlog_max;
	s->rate_max = (uint64_t)cfg->otlp_rate_max;
	s->severity_floor = !strcasecmp(v, "INFO") ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO
			  : !strcasecmp(v, "WARN") ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN
			  : !strcasecmp(v, "ERROR") ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR
			  : -1;
	if (s->severity_floor < 0) {
		snprintf(err, errlen, "--otlp-severity-floor: '%s' is not INFO, WARN or ERROR", v);
		return -EINVAL;
	}
	return 0;
}

int otlp_settings(const struct otlp_config *cfg, const char *host, struct otlp_settings *s,
		  char *err, size_t errlen)
{
	const char *from = "";
	int rc;

	memset(s, 0, sizeof(*s));
	rc = endpoint(cfg, s, &from, err, errlen);
	if (rc <= 0)
		return rc;
	if ((rc = transport(cfg, s, err, errlen)) || (rc = headers_and_tls(cfg, s, err, errlen)) ||
	    (rc = resource(cfg, host, s, err, errlen)) || (rc = limits(cfg, s, err, errlen))) {
		otlp_settings_free(s);
		return rc;
	}
	return 1;
}

void otlp_settings_free(struct otlp_settings *s)
{
	if (!s)
		return;
	strlist_free(&s->headers);
	strlist_free(&s->resource);
	free(s->ca_file);
	free(s->cert_file);
	free(s->key_file);
}

