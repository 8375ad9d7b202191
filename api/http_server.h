/* http_server.h: HTTP/1.1 on a Unix socket (libmicrohttpd), for a JSON API: each request's
 * method, path and whole body go to one handler, which answers with a status and an optional
 * JSON body. Keep-alive, Content-Length and chunked bodies, Expect: 100-continue and
 * malformed requests are libmicrohttpd's; the body size limit is ours. */
#ifndef MVM_API_HTTP_SERVER_H
#define MVM_API_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct http_server;

/* Returns the HTTP status; (*reply) is the JSON body (a reference the server releases), or
 * NULL for none (204). (body) is NUL-terminated; (len) excludes the NUL. */
typedef unsigned int (*http_handler)(void *ctx, const char *method, const char *path,
				     const char *body, size_t len, json_t **reply);

/* Creates the socket at (path) and listens on it. An existing file at (path) is an error
 * (-EEXIST), as Firecracker refuses it: a stale socket must be removed by whoever owns it.
 * Bodies over (max_body) bytes get 400 without reaching (fn). */
int http_server_open(struct http_server **out, const char *path, size_t max_body,
		     http_handler fn, void *ctx);
/* Serves requests on the calling thread until http_server_stop(); waits at most (tick_ms)
 * between calls of (tick) (NULL for none), for periodic work such as metrics. */
void http_server_serve(struct http_server *s, void (*tick)(void *ctx), unsigned int tick_ms);
/* Any thread: makes http_server_serve() return soon. */
void http_server_stop(struct http_server *s);
/* After http_server_serve() returned (or was never called): closes every connection, removes
 * the socket file. */
void http_server_close(struct http_server *s);

#endif
