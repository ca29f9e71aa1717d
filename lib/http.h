/* HTTP on the libev loop: libcurl's multi interface driven by ev_io and
 * ev_timer watchers, so a slow or dead server never blocks the daemon.
 * Used by the OTLP exporter and the Kubernetes client. */
#ifndef REFLEX_LIB_HTTP_H
#define REFLEX_LIB_HTTP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

#define HTTP_TIMEOUT_NONE UINT64_MAX

struct http_request {
	const char *method;          /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *url;
	const struct strlist *headers; /* "Name: value" lines, or NULL */
	const void *body;            /* NULL: none */
	size_t body_len;
	uint64_t timeout_ns;         /* the whole transfer; 0: 10 s; HTTP_TIMEOUT_NONE: no limit */
	size_t max_response;         /* keep at most this much body; 0: 1 MiB */
	/* a streamed reply (a watch): a 2xx body goes here piece by piece as
	 * it arrives instead of being kept, after a first call with len 0
	 * when the 2xx headers are in; non-zero from it ends the
	 * transfer (done then sees the status and the error "stopped by the
	 * reader"). Any other status is kept as usual. ctx is done's. */
	int (*on_data)(void *ctx, const char *data, size_t len);
	/* TLS (always verified): a CA bundle file or PEM text, and a client
	 * certificate and key as files or PEM text; NULL: none/system */
	const char *ca_file, *ca_pem;
	const char *cert_file, *cert_pem, *key_file, *key_pem;
};

struct http_response {
	long status;           /* 0: no response at all (see error) */
	const char *error;     /* why there was no response, or "" */
	const char *body;      /* NUL-terminated, at most max_response bytes */
	size_t body_len;
	bool truncated;        /* the server sent more than max_response */
	const char *retry_after;   /* the Retry-After header, or "" */
	const char *content_type;  /* or "" */
	uint64_t elapsed_ns;
};

/* Called once per request, on the loop, with the response (valid only
 * during the call). ctx is the caller's. */
typedef void (*http_done_fn)(void *ctx, const struct http_response *res);

struct http_client;

struct http_client *http_new(struct ev_loop *loop);
/* Starts req; done runs later, never from inside http_send. 0 or -errno
 * (the request is then not started and done never runs). */
int http_send(struct http_client *c, const struct http_request *req, http_done_fn done, void *ctx);
/* Requests still in flight. */
size_t http_pending(const struct http_client *c);
/* Aborts whatever is in flight (their done never runs) and frees c. */
void http_free(struct http_client *c);

/* A Retry-After value (delay-seconds or an HTTP-date) as a delay from
 * now_real_ns: 0 and *delay_ns, or -EINVAL. A date in the past is 0. */
int http_retry_after(const char *value, int64_t now_real_ns, uint64_t *delay_ns);

#endif
