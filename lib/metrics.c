#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/metrics.h"

#define METRICS_TEXT_MAX (256 * 1024)
#define REQUEST_MAX 2048
#define READYZ_MAX 4096
#define CONN_TIMEOUT 5.0

struct metric {
	char *name, *help, *label, *value;
	bool gauge;
	double v;
	struct metric *next;
};

/* in the order of first use; a family is written whole where its first
 * series stands, however its series interleave with others' here */
static struct metric *registry, **registry_tail = &registry;

static struct metric *metric_get(const char *name, const char *help, const char *label,
				 const char *value, bool gauge)
{
	struct metric *m;

	for (m = registry; m; m = m->next)
		if (!strcmp(m->name, name) && !strcmp(m->label ? m->label : "", label ? label : "") &&
		    !strcmp(m->value ? m->value : "", value ? value : ""))
			return m;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->name = strdup(name);
	m->help = strdup(help);
	m->label = label ? strdup(label) : NULL;
	m->value = label ? strdup(value ? value : "") : NULL;
	m->gauge = gauge;
	if (!m->name || !m->help || (label && (!m->label || !m->value))) {
		free(m->name);
		free(m->help);
		free(m->label);
		free(m->value);
		free(m);
		return NULL;
	}
	*registry_tail = m;
	registry_tail = &m->next;
	return m;
}

struct metric *metrics_counter(const char *name, const char *help, const char *label, const char *value)
{
	return metric_get(name, help, label, value, false);
}

struct metric *metrics_gauge(const char *name, const char *help, const char *label, const char *value)
{
	return metric_get(name, help, label, value, true);
}

void metric_add(struct metric *m, double v)
{
	if (m)
		m->v += v;
}

void metric_set(struct metric *m, double v)
{
	if (m)
		m->v = v;
}

double metric_value(const struct metric *m)
{
	return m ? m->v : 0;
}

/* A label value escaped as the text format wants: \\, \" and \n. */
static void label_value(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			sbuf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			sbuf_printf(b, "\\n");
		else
			sbuf_printf(b, "%c", *s);
	}
}

static void series(struct sbuf *b, const struct metric *m)
{
	sbuf_printf(b, "%s", m->name);
	if (m->label) {
		sbuf_printf(b, "{%s=\"", m->label);
		label_value(b, m->value);
		sbuf_printf(b, "\"}");
	}
	sbuf_printf(b, " %.17g\n", m->v);
}

/* The text format wants each family in one block (HELP, TYPE, then every
 * series): quadratic in the series, of which there are a few dozen. */
void metrics_format(struct sbuf *b)
{
	for (struct metric *m = registry; m; m = m->next) {
		bool first = true;

		for (struct metric *p = registry; p != m && first; p = p->next)
			first = strcmp(p->name, m->name) != 0;
		if (!first)
			continue;
		sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
			    m->gauge ? "gauge" : "counter");
		for (struct metric *p = m; p; p = p->next)
			if (!strcmp(p->name, m->name))
				series(b, p);
	}
}

struct metrics_server {
	struct ev_loop *loop;
	int fd;
	ev_io accept;
	struct conn *conns;
	bool (*ready)(void *ctx, struct sbuf *body);  /* NULL: still starting */
	void *ready_ctx;
};

void metrics_set_readiness(struct metrics_server *s, bool (*ready)(void *ctx, struct sbuf *body),
			   void *ctx)
{
	if (!s)
		return;
	s->ready = ready;
	s->ready_ctx = ctx;
}

/* One client: read its request, write the answer, close. */
struct conn {
	struct metrics_server *s;
	int fd;
	ev_io io;
	ev_timer timeout;
	char in[REQUEST_MAX];
	size_t inlen;
	char *out;
	size_t outlen, sent;
	struct conn *prev, *next;
};

static void conn_close(struct conn *c)
{
	ev_io_stop(c->s->loop, &c->io);
	ev_timer_stop(c->s->loop, &c->timeout);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		c->s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->out);
	free(c);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	conn_close(w->data);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t n = write(c->fd, c->out + c->sent, c->outlen - c->sent);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (c->sent += (size_t)n) == c->outlen)
		conn_close(c);
}

/* The answer to the request line in c->in, as a whole HTTP/1.0 response. */
static void respond(struct conn *c)
{
	char method[16] = "", path[256] = "", *body = NULL, head[256];
	const char *status = "200 OK", *type = "text/plain; version=0.0.4; charset=utf-8", *allow = "";
	struct sbuf b;
	size_t len = 0;

	(void)sscanf(c->in, "%15s %255s", method, path);
	path[strcspn(path, "?")] = '\0';
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		status = "405 Method Not Allowed";
		type = "text/plain";
		/* RFC 9110 15.5.6: a 405 lists the methods that would do */
		allow = "Allow: GET, HEAD\r\n";
		body = strdup("only GET and HEAD\n");
	} else if (!strcmp(path, "/metrics")) {
		body = malloc(METRICS_TEXT_MAX);
		if (body) {
			sbuf_init(&b, body, METRICS_TEXT_MAX);
			metrics_format(&b);
		}
	} else if (!strcmp(path, "/healthz")) {
		/* answered by the loop itself: an answer means it turns */
		type = "text/plain";
		body = strdup("ok\n");
	} else if (!strcmp(path, "/readyz")) {
		type = "text/plain";
		body = malloc(READYZ_MAX);
		if (body) {
			sbuf_init(&b, body, READYZ_MAX);
			if (!c->s->ready)
				sbuf_puts(&b, "not ready: starting\n");
			if (!c->s->ready || !c->s->ready(c->s->ready_ctx, &b))
				status = "503 Service Unavailable";
		}
	} else {
		status = "404 Not Found";
		type = "text/plain";
		body = strdup("not found: try /metrics, /healthz or /readyz\n");
	}
	if (!body) {
		conn_close(c);
		return;
	}
	len = strlen(body);
	snprintf(head, sizeof(head), "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		 "Connection: close\r\n\r\n", status, type, len, allow);
	if (!strcmp(method, "HEAD"))
		len = 0;
	c->outlen = strlen(head) + len;
	c->out = malloc(c->outlen);
	if (!c->out) {
		free(body);
		conn_close(c);
		return;
	}
	memcpy(c->out, head, strlen(head));
	memcpy(c->out + strlen(head), body, len);
	free(body);
	ev_io_stop(c->s->loop, &c->io);
	ev_io_init(&c->io, on_write, c->fd, EV_WRITE);
	c->io.data = c;
	ev_io_start(c->s->loop, &c->io);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t n = read(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	/* the request line is all that matters; headers are read and ignored */
	if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n") || c->inlen == sizeof(c->in) - 1)
		respond(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct metrics_server *s = w->data;
	int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct conn *c;

	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	ev_io_init(&c->io, on_read, fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timeout, on_timeout, CONN_TIMEOUT, 0);
	c->timeout.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_start(loop, &c->timeout);
	c->next = s->conns;
	if (c->next)
		c->next->prev = c;
	s->conns = c;
}

struct metrics_server *metrics_serve(struct ev_loop *loop, const char *addr, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct metrics_server *s;
	char host[128] = "127.0.0.1", *colon;
	const char *port = addr;
	int one = 1, rc;

	/* "PORT", ":PORT", "HOST:PORT", "[V6]:PORT" */
	colon = strrchr(addr, ':');
	if (colon) {
		size_t n = (size_t)(colon - addr);

		if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']')
			snprintf(host, sizeof(host), "%.*s", (int)(n - 2), addr + 1);
		else if (n)
			snprintf(host, sizeof(host), "%.*s", (int)n, addr);
		port = colon + 1;
	}
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "--metrics %s: %s (want PORT, HOST:PORT or [V6]:PORT)", addr,
			 gai_strerror(rc));
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->loop = loop;
	s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->fd, ai->ai_addr, ai->ai_addrlen) || listen(s->fd, 16)) {
		snprintf(err, errlen, "--metrics %s: %s", addr, strerror(errno));
		freeaddrinfo(ai);
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return NULL;
	}
	freeaddrinfo(ai);
	ev_io_init(&s->accept, on_accept, s->fd, EV_READ);
	s->accept.data = s;
	ev_io_start(loop, &s->accept);
	return s;
}

void metrics_server_free(struct metrics_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns);
	ev_io_stop(s->loop, &s->accept);
	close(s->fd);
	free(s);
}
