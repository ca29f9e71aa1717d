#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "lib/http.h"
#include "lib/log.h"

#define DEFAULT_TIMEOUT_NS (10 * NSEC_PER_SEC)
#define DEFAULT_MAX_RESPONSE (1 << 20)

struct transfer {
	struct http_client *c;
	CURL *easy;
	struct curl_slist *headers;
	http_done_fn done;
	int (*on_data)(void *ctx, const char *data, size_t len);
	void *ctx;
	bool stopped;   /* on_data asked to end the transfer */
	char *body;
	size_t len, cap, max;
	bool truncated;
	char retry_after[64];
	char content_type[128];
	char error[CURL_ERROR_SIZE];
	uint64_t started;
	struct transfer *prev, *next;
};

/* One per socket curl wants watched. */
struct sock_watch {
	ev_io io;
	struct http_client *c;
	curl_socket_t fd;
};

struct http_client {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer;
	struct transfer *transfers;
	size_t pending;
};

static void finish(struct http_client *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct transfer *t;
		struct http_response res = { .error = "" };

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &res.status);
		if (t->stopped) {
			res.error = "stopped by the reader";
		} else if (msg->data.result != CURLE_OK && !t->truncated) {
			res.status = 0;
			res.error = t->error[0] ? t->error : curl_easy_strerror(msg->data.result);
		}
		res.body = t->body ? t->body : "";
		res.body_len = t->len;
		res.truncated = t->truncated;
		res.retry_after = t->retry_after;
		res.content_type = t->content_type;
		res.elapsed_ns = clock_mono_ns() - t->started;
		curl_multi_remove_handle(c->multi, t->easy);
		if (t->prev)
			t->prev->next = t->next;
		else
			c->transfers = t->next;
		if (t->next)
			t->next->prev = t->prev;
		c->pending--;
		t->done(t->ctx, &res);
		curl_easy_cleanup(t->easy);
		curl_slist_free_all(t->headers);
		free(t->body);
		free(t);
	}
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sock_watch *s = (struct sock_watch *)w;
	int running, action = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
			      (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
	struct http_client *c = s->c;

	curl_multi_socket_action(c->multi, s->fd, action, &running);
	finish(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_client *c = w->data;
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	finish(c);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct sock_watch *s = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			ev_io_stop(c->loop, &s->io);
			free(s);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->c = c;
		s->fd = fd;
		curl_multi_assign(c->multi, fd, s);
	} else {
		ev_io_stop(c->loop, &s->io);
	}
	ev_io_init(&s->io, on_io, fd,
		   (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0));
	ev_io_start(c->loop, &s->io);
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;

	ev_timer_stop(c->loop, &c->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&c->timer, (double)timeout_ms / 1000, 0);
		ev_timer_start(c->loop, &c->timer);
	}
	return 0;
}

struct http_client *http_new(struct ev_loop *loop)
{
	static bool initialized;
	struct http_client *c;

	if (!initialized) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
			errno = EIO;
			return NULL;
		}
		initialized = true;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = loop;
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	ev_timer_init(&c->timer, on_timer, 0, 0);
	c->timer.data = c;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
	struct transfer *t = userp;
	size_t len = size * n;
	long status = 0;

	if (t->on_data) {
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			t->stopped = t->on_data(t->ctx, data, len) != 0;
			return t->stopped ? 0 : len;
		}
	}
	if (t->len + len > t->max) {
		/* stop reading: the status is known, the rest is not wanted */
		t->truncated = true;
		return 0;
	}
	if (t->len + len + 1 > t->cap) {
		size_t cap = (t->len + len + 1) * 2;
		char *b = realloc(t->body, cap < t->max + 1 ? cap : t->max + 1);

		if (!b)
			return 0;
		t->body = b;
		t->cap = cap < t->max + 1 ? cap : t->max + 1;
	}
	memcpy(t->body + t->len, data, len);
	t->len += len;
	t->body[t->len] = '\0';
	return len;
}

/* Keeps the headers a caller needs; a new status line (after a 100
 * Continue) starts over. */
static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
	static const struct {
		const char *name;
		size_t offset, size;
	} wanted[] = {
		{ "retry-after:", offsetof(struct transfer, retry_after), sizeof(((struct transfer *)0)->retry_after) },
		{ "content-type:", offsetof(struct transfer, content_type), sizeof(((struct transfer *)0)->content_type) },
	};
	struct transfer *t = userp;
	size_t len = size * n;

	if (len > 5 && !strncmp(data, "HTTP/", 5)) {
		t->retry_after[0] = t->content_type[0] = '\0';
		return len;
	}
	if (t->on_data && (len == 2 || len == 1) && (data[0] == '\r' || data[0] == '\n')) {
		long status = 0;

		/* the headers' end: a stream's reader learns it started */
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300 && t->on_data(t->ctx, "", 0)) {
			t->stopped = true;
			return 0;
		}
		return len;
	}
	for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
		size_t k = strlen(wanted[i].name), end = len;
		char *out = (char *)t + wanted[i].offset;

		if (len < k || strncasecmp(data, wanted[i].name, k))
			continue;
		while (k < len && isspace((unsigned char)data[k]))
			k++;
		while (end > k && isspace((unsigned char)data[end - 1]))
			end--;
		snprintf(out, wanted[i].size, "%.*s", (int)(end - k), data + k);
	}
	return len;
}

/* curl keeps a pointer to the blob's struct only during setopt; its
 * CURL_BLOB_COPY flag copies the data. */
static CURLcode set_blob(CURL *e, CURLoption opt, const char *pem)
{
	struct curl_blob blob = { .data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY };

	return curl_easy_setopt(e, opt, &blob);
}

int http_send(struct http_client *c, const struct http_request *req, http_done_fn done, void *ctx)
{
	struct transfer *t = calloc(1, sizeof(*t));
	CURLcode rc = CURLE_OK;
	CURL *e;

	if (!t)
		return -ENOMEM;
	t->c = c;
	t->done = done;
	t->on_data = req->on_data;
	t->ctx = ctx;
	t->max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
	t->started = clock_mono_ns();
	t->easy = e = curl_easy_init();
	if (!e) {
		free(t);
		return -ENOMEM;
	}
	/* curl's own "Expect: 100-continue" costs a round trip per POST */
	t->headers = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; t->headers && req->headers && i < req->headers->n; i++)
		t->headers = curl_slist_append(t->headers, req->headers->v[i]) ?: t->headers;
	rc |= curl_easy_setopt(e, CURLOPT_URL, req->url);
	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	/* curl's 0 is no limit */
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ns == HTTP_TIMEOUT_NONE ? 0L :
			       (long)((req->timeout_ns ? req->timeout_ns : DEFAULT_TIMEOUT_NS) / NSEC_PER_MSEC));
	if (req->body) {
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		rc |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body);
	}
	if (strcmp(req->method, req->body ? "POST" : "GET"))
		rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->ca_file)
		rc |= curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
	if (req->ca_pem)
		rc |= set_blob(e, CURLOPT_CAINFO_BLOB, req->ca_pem);
	if (req->cert_file)
		rc |= curl_easy_setopt(e, CURLOPT_SSLCERT, req->cert_file);
	if (req->cert_pem)
		rc |= set_blob(e, CURLOPT_SSLCERT_BLOB, req->cert_pem);
	if (req->key_file)
		rc |= curl_easy_setopt(e, CURLOPT_SSLKEY, req->key_file);
	if (req->key_pem)
		rc |= set_blob(e, CURLOPT_SSLKEY_BLOB, req->key_pem);
	if (rc != CURLE_OK || !t->headers || curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		log_error("http: %s %s: cannot set up the request", req->method, req->url);
		curl_easy_cleanup(e);
		curl_slist_free_all(t->headers);
		free(t);
		return -EINVAL;
	}
	t->next = c->transfers;
	if (t->next)
		t->next->prev = t;
	c->transfers = t;
	c->pending++;
	return 0;
}

size_t http_pending(const struct http_client *c)
{
	return c->pending;
}

void http_free(struct http_client *c)
{
	if (!c)
		return;
	while (c->transfers) {
		struct transfer *t = c->transfers;

		c->transfers = t->next;
		curl_multi_remove_handle(c->multi, t->easy);
		curl_easy_cleanup(t->easy);
		curl_slist_free_all(t->headers);
		free(t->body);
		free(t);
	}
	curl_multi_cleanup(c->multi);
	ev_timer_stop(c->loop, &c->timer);
	free(c);
}

int http_retry_after(const char *value, int64_t now_real_ns, uint64_t *delay_ns)
{
	const char *p = value;
	time_t when;

	while (*p >= '0' && *p <= '9')
		p++;
	if (p != value && !*p && p - value <= 9) {
		*delay_ns = strtoull(value, NULL, 10) * NSEC_PER_SEC;
		return 0;
	}
	when = curl_getdate(value, NULL);
	if (!*value || when == -1)
		return -EINVAL;
	*delay_ns = (int64_t)when * (int64_t)NSEC_PER_SEC > now_real_ns
			    ? (uint64_t)((int64_t)when * (int64_t)NSEC_PER_SEC - now_real_ns)
			    : 0;
	return 0;
}
