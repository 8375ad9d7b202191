/* http_server.c: the JSON-over-HTTP/1.1 server on a Unix socket (http_server.h), on
 * libmicrohttpd driven from our own thread (MHD_run_wait), so the thread that serves the API is
 * one mvm names, confines and stops. */
#define pr_fmt(fmt) "api: " fmt
#include "http_server.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

/* Several clients in turn (an orchestrator, a metrics scraper, a human with curl), and a
 * client that stalls mid-request is dropped after this long instead of holding a slot. */
#define MAX_CONNECTIONS	  32
#define IDLE_TIMEOUT_S	  60
/* How long MHD_run_wait() may block, at most: the delay of http_server_stop(). */
#define STOP_POLL_MS	  200

struct http_server {
	struct MHD_Daemon *daemon;
	int fd;
	char *path;
	size_t max_body;
	http_handler fn;
	void *ctx;
	_Atomic bool stop;
};

/* One request being received: its body, up to the limit. */
struct request {
	char *body;
	size_t len, cap;
	bool too_big;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	pr_info("%s", buf);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, json_t *reply)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;

	json_decref(reply);
	if (text)
		r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	else
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(text);
		return MHD_NO; /* out of memory: MHD closes the connection */
	}
	if (text)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static json_t *fault(const char *msg)
{
	return json_pack("{s:s}", "fault_message", msg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct request *r = *con_cls;
	json_t *reply = NULL;
	unsigned int status;

	if (!r) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		/* Refused before the body is read (and before 100 Continue is sent). */
		if (cl && strtoull(cl, NULL, 10) > s->max_body) {
			char msg[128];

			snprintf(msg, sizeof(msg), "the request body of %s bytes is over the "
				 "limit of %zu bytes", cl, s->max_body);
			return respond(c, MHD_HTTP_BAD_REQUEST, fault(msg));
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->too_big || r->len + n > s->max_body) {
			r->too_big = true; /* chunked: read and dropped, answered at the end */
			return MHD_YES;
		}
		if (r->len + n + 1 > r->cap) {
			size_t cap = r->len + n + 1 > 2 * r->cap ? r->len + n + 1 : 2 * r->cap;
			char *b = realloc(r->body, cap);

			if (!b)
				return MHD_NO;
			r->body = b;
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload_data, n);
		r->len += n;
		return MHD_YES;
	}
	if (r->too_big) {
		char msg[128];

		snprintf(msg, sizeof(msg), "the request body is over the limit of %zu bytes",
			 s->max_body);
		return respond(c, MHD_HTTP_BAD_REQUEST, fault(msg));
	}
	if (r->body)
		r->body[r->len] = 0;
	status = s->fn(s->ctx, method, url, r->body ? r->body : "", r->len, &reply);
	return respond(c, status, reply);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;

	if (r) {
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
}

/* Binds and listens under a temporary name in the same directory, then links the listening
 * socket to (path): the file appears only once connections to it succeed (a client that waits
 * for the file, as Firecracker's SDKs do, never sees ECONNREFUSED), and link() refuses an
 * existing (path) atomically. */
static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, e;

	if (strlen(path) + 16 >= sizeof(sa.sun_path)) {
		pr_err("--api-sock: the path '%s' is longer than %zu bytes", path,
		       sizeof(sa.sun_path) - 17);
		return -ENAMETOOLONG;
	}
	if (!lstat(path, &st)) {
		pr_err("--api-sock: '%s' already exists (remove a stale socket first)", path);
		return -EEXIST;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d.tmp", path, (int)getpid());
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		pr_err("socket: %s", strerror(errno));
		return -errno;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16) ||
	    link(sa.sun_path, path)) {
		e = errno;
		pr_err("--api-sock '%s': %s", path, e == EEXIST ? "already exists" : strerror(e));
		unlink(sa.sun_path);
		close(fd);
		return -e;
	}
	unlink(sa.sun_path);
	return fd;
}

int http_server_open(struct http_server **out, const char *path, size_t max_body,
		     http_handler fn, void *ctx)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s || !(s->path = strdup(path))) {
		free(s);
		return -ENOMEM;
	}
	s->max_body = max_body;
	s->fn = fn;
	s->ctx = ctx;
	s->fd = listen_unix(path);
	if (s->fd < 0) {
		int ret = s->fd;

		free(s->path);
		free(s);
		return ret;
	}
	/* No internal thread: http_server_serve() runs the loop. MHD_USE_ERROR_LOG routes
	 * libmicrohttpd's own messages (malformed requests) to our log at info level. */
	s->daemon = MHD_start_daemon(MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, s,
				     MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->fd,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT_S,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_END);
	if (!s->daemon) {
		pr_err("cannot start the HTTP server on '%s'", path);
		close(s->fd);
		unlink(path);
		free(s->path);
		free(s);
		return -EIO;
	}
	*out = s;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void http_server_serve(struct http_server *s, void (*tick)(void *ctx), unsigned int tick_ms)
{
	uint64_t next = now_ms() + tick_ms;

	while (!atomic_load(&s->stop)) {
		if (MHD_run_wait(s->daemon, STOP_POLL_MS) != MHD_YES) {
			pr_err("the HTTP server failed; the API is gone");
			return;
		}
		if (tick && now_ms() >= next) {
			tick(s->ctx);
			next = now_ms() + tick_ms;
		}
	}
}

void http_server_stop(struct http_server *s)
{
	atomic_store(&s->stop, true);
}

void http_server_close(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon); /* closes the listening socket too */
	unlink(s->path);
	free(s->path);
	free(s);
}
