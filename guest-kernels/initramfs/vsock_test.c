/* vsock_test.c: the guest end of mvm's vsock tests (busybox has no AF_VSOCK client). Built
 * static by build.sh into the initramfs as /bin/vsock_test.
 *
 *   vsock_test connect PORT [MSG]   connect to the host (CID 2) on PORT, send MSG, then echo
 *                                   what comes back until the host closes
 *   vsock_test listen PORT N        accept N connections on PORT, each echoed by its own
 *                                   process until its peer closes; prints
 *                                   "VSOCK-LISTENING PORT" once listening
 *   vsock_test source PORT BYTES    connect to the host on PORT and send BYTES bytes
 *   vsock_test sink PORT            accept one connection on PORT, read to its end, write
 *                                   back the byte count as "<count>\n"
 * Exit status 0 on success; messages on stderr. */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned int port_arg(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*end || v > 0xffffffffUL) {
		fprintf(stderr, "vsock_test: bad port '%s'\n", s);
		exit(2);
	}
	return (unsigned int)v;
}

static int vsock(void)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (s < 0) {
		perror("vsock_test: socket(AF_VSOCK)");
		exit(1);
	}
	return s;
}

static int connect_host(unsigned int port)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST,
				.svm_port = port};
	int s = vsock();

	if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
		fprintf(stderr, "vsock_test: connect to host port %u: %s\n", port,
			strerror(errno));
		exit(1);
	}
	return s;
}

static int write_all(int s, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(s, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Echoes until the peer closes; returns 0, or 1 on an error. */
static int echo(int s)
{
	static char buf[65536];

	for (;;) {
		ssize_t n = read(s, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return 0;
		if (n < 0 || write_all(s, buf, (size_t)n)) {
			perror("vsock_test: echo");
			return 1;
		}
	}
}

static int listen_port(unsigned int port)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				.svm_port = port};
	int s = vsock();

	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 64)) {
		fprintf(stderr, "vsock_test: listen on %u: %s\n", port, strerror(errno));
		exit(1);
	}
	printf("VSOCK-LISTENING %u\n", port);
	fflush(stdout);
	return s;
}

int main(int argc, char **argv)
{
	static char buf[65536];
	const char *mode = argc > 2 ? argv[1] : "";
	int s, status, ret = 0;

	if (!strcmp(mode, "connect")) {
		s = connect_host(port_arg(argv[2]));
		if (argc > 3 && write_all(s, argv[3], strlen(argv[3])))
			return 1;
		return echo(s);
	}
	if (!strcmp(mode, "listen") && argc > 3) {
		int n = atoi(argv[3]);

		s = listen_port(port_arg(argv[2]));
		for (int i = 0; i < n; i++) {
			int c = accept(s, NULL, NULL);

			if (c < 0) {
				perror("vsock_test: accept");
				return 1;
			}
			if (fork() == 0)
				_exit(echo(c));
			close(c);
		}
		while (wait(&status) > 0)
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				ret = 1;
		return ret;
	}
	if (!strcmp(mode, "source") && argc > 3) {
		unsigned long long left = strtoull(argv[3], NULL, 10);

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)i;
		s = connect_host(port_arg(argv[2]));
		while (left) {
			size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);

			if (write_all(s, buf, n)) {
				perror("vsock_test: source");
				return 1;
			}
			left -= n;
		}
		shutdown(s, SHUT_WR);
		while (read(s, buf, sizeof(buf)) > 0)
			;
		return 0;
	}
	if (!strcmp(mode, "sink")) {
		unsigned long long total = 0;
		int l = listen_port(port_arg(argv[2]));
		ssize_t n;

		s = accept(l, NULL, NULL);
		if (s < 0) {
			perror("vsock_test: accept");
			return 1;
		}
		while ((n = read(s, buf, sizeof(buf))) > 0)
			total += (unsigned long long)n;
		n = snprintf(buf, sizeof(buf), "%llu\n", total);
		return write_all(s, buf, (size_t)n) ? 1 : 0;
	}
	fprintf(stderr, "usage: vsock_test connect PORT [MSG] | listen PORT N | source PORT "
			"BYTES | sink PORT\n");
	return 2;
}
