/* printf.c: a small printf for the test guests: %d %i %u %x %X %p %s %c %%, the flags '0' and
 * '-', a field width (or '*'), and the length modifiers l, ll, z. Output goes to the serial
 * port (printf) or a buffer (snprintf). */
#include "guest.h"

struct out {
	char *buf; /* NULL: serial */
	size_t size, len;
};

static void out_c(struct out *o, char c)
{
	if (!o->buf)
		serial_putc(c);
	else if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void out_pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		out_c(o, c);
}

/* Emits (digits, n) with an optional sign, padded to (width). */
static void out_field(struct out *o, const char *sign, const char *s, int n, int width, bool zero,
		      bool left)
{
	int slen = (int)strlen(sign);
	int pad = width - n - slen;

	if (!left && !zero)
		out_pad(o, ' ', pad);
	for (int i = 0; i < slen; i++)
		out_c(o, sign[i]);
	if (!left && zero)
		out_pad(o, '0', pad);
	for (int i = 0; i < n; i++)
		out_c(o, s[i]);
	if (left)
		out_pad(o, ' ', pad);
}

static int utoa(uint64_t v, unsigned int base, bool upper, char *tmp)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char rev[24];
	int n = 0;

	do {
		rev[n++] = digits[v % base];
		v /= base;
	} while (v);
	for (int i = 0; i < n; i++)
		tmp[i] = rev[n - 1 - i];
	return n;
}

static void format(struct out *o, const char *fmt, va_list ap)
{
	char tmp[24];

	for (; *fmt; fmt++) {
		bool zero = false, left = false;
		int width = 0, lng = 0;

		if (*fmt != '%') {
			out_c(o, *fmt);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '0')
				zero = true;
			else if (*fmt == '-')
				left = true;
			else
				break;
		}
		if (*fmt == '*') {
			width = va_arg(ap, int);
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
			int n = utoa(u, 10, false, tmp);

			out_field(o, v < 0 ? "-" : "", tmp, n, width, zero, left);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
			int n = utoa(v, *fmt == 'u' ? 10 : 16, *fmt == 'X', tmp);

			out_field(o, "", tmp, n, width, zero, left);
			break;
		}
		case 'p': {
			uint64_t v = (uint64_t)(uintptr_t)va_arg(ap, void *);
			int n = utoa(v, 16, false, tmp);

			out_field(o, "0x", tmp, n, width, zero, left);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);

			if (!s)
				s = "(null)";
			out_field(o, "", s, (int)strlen(s), width, false, left);
			break;
		}
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			out_field(o, "", tmp, 1, width, false, left);
			break;
		case '%':
			out_c(o, '%');
			break;
		case '\0':
			return;
		default: /* unknown conversion: show it */
			out_c(o, '%');
			out_c(o, *fmt);
			break;
		}
	}
}

int vprintf(const char *fmt, va_list ap)
{
	struct out o = {0};

	format(&o, fmt, ap);
	return (int)o.len;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {.buf = buf, .size = size};

	format(&o, fmt, ap);
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
