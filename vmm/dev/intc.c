/* intc.c: the glue of the interrupt-controller models: one lock, notifications sent after it
 * is dropped, timerfd timers on the I/O loop, the GSI lines, bus attachment and the API. */
#define pr_fmt(fmt) "intc: " fmt
#include "intc_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/layout.h"
#include "util/log.h"
#include "util/util.h"

uint64_t intc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

void intc_lock(struct intc_state *s)
{
	pthread_mutex_lock(&s->lock);
}

/* Sends the notifications in the order a CPU sees them: INIT before SIPI, kicks last. */
static void notify_send(struct intc_state *s, const struct intc_notify *n)
{
	const struct intc_ops *ops = s->ops;

	for (unsigned int w = 0; w < CPUSET_WORDS; w++) {
		uint64_t all = n->init.w[w] | n->sipi.w[w] | n->nmi.w[w] | n->kick.w[w];

		while (all) {
			unsigned int cpu = w * 64 + (unsigned int)__builtin_ctzll(all);

			all &= all - 1;
			if (cpuset_has(&n->init, cpu)) {
				if (ops->init)
					ops->init(s->ctx, cpu);
				else
					pr_warn_once(
						"INIT to cpu %u dropped: the engine takes none",
						cpu);
			}
			if (cpuset_has(&n->sipi, cpu)) {
				if (ops->sipi)
					ops->sipi(s->ctx, cpu, n->sipi_vector);
				else
					pr_warn_once(
						"SIPI to cpu %u dropped: the engine takes none",
						cpu);
			}
			if (cpuset_has(&n->nmi, cpu)) {
				if (ops->nmi)
					ops->nmi(s->ctx, cpu);
				else
					pr_warn_once("NMI to cpu %u dropped: the engine takes none",
						     cpu);
			}
			if (cpuset_has(&n->kick, cpu))
				ops->kick(s->ctx, cpu);
		}
	}
}

void intc_unlock(struct intc_state *s, struct intc_notify *n)
{
	pthread_mutex_unlock(&s->lock);
	if (n->any)
		notify_send(s, n);
}

/* ---- timers ---- */

static void timerfd_set(struct intc_timer *t, uint64_t at)
{
	struct itimerspec its = {
		.it_value = {.tv_sec = (time_t)(at / NSEC_PER_SEC),
			     .tv_nsec = (long)(at % NSEC_PER_SEC)},
	};

	/* An all-zero it_value disarms. */
	if (timerfd_settime(t->fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		pr_warn_once("timerfd_settime: %s", strerror(errno));
}

void intc_timer_arm(struct intc_timer *t, uint64_t deadline, uint64_t not_before)
{
	if (!deadline) {
		intc_timer_disarm(t);
		return;
	}
	t->deadline = deadline;
	timerfd_set(t, MAX(deadline, not_before));
}

void intc_timer_disarm(struct intc_timer *t)
{
	if (!t->deadline)
		return;
	t->deadline = 0;
	timerfd_set(t, 0);
}

/* NOTE: the timerfd is blocking (no TFD_NONBLOCK): io_uring would complete a read of a
 * non-blocking fd with -EAGAIN instead of waiting. Kernels that can poll a timerfd (6.18 here)
 * wait without a thread; others serve the read from an io-wq worker. */
static void timer_read(struct intc_state *s, struct intc_timer *t)
{
	struct io_uring_sqe *sqe = loop_sqe(s->loop, &t->op);

	if (!sqe) {
		pr_err("no SQE for a timer read: that timer stops");
		return;
	}
	io_uring_prep_read(sqe, t->fd, &t->buf, sizeof(t->buf), 0);
}

/* I/O thread. The timerfd only says "look now": the model's own deadline decides, because the
 * guest may have reprogrammed the timer after this read completed. */
static void timer_done(struct loop_op *op, int res, unsigned int cqe_flags)
{
	struct intc_timer *t = container_of(op, struct intc_timer, op);
	struct intc_state *s = t->s;
	struct intc_notify n = {0};

	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		if (res != -ECANCELED)
			pr_err("timerfd read: %s: that timer stops", strerror(-res));
		return;
	}
	intc_lock(s);
	if (t->deadline) {
		uint64_t now = intc_now();

		if (now >= t->deadline) {
			t->fires++;
			t->expire(t, now, &n);
		}
	}
	intc_unlock(s, &n);
	timer_read(s, t);
}

static int timer_init(struct intc_state *s, struct intc_timer *t, intc_expire_fn expire)
{
	t->s = s;
	t->expire = expire;
	t->op.done = timer_done;
	t->deadline = 0;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (t->fd < 0) {
		int ret = -errno;

		pr_err("timerfd_create: %s", strerror(errno));
		return ret;
	}
	return 0;
}

/* ---- lines ---- */

void intc_set_gsi_locked(struct intc_state *s, unsigned int gsi, int level, struct intc_notify *n)
{
	if (gsi >= INTC_GSIS) {
		pr_warn_once("GSI %u does not exist (0-%u): dropped", gsi, INTC_GSIS - 1);
		return;
	}
	level = !!level;
	if (level)
		s->gsi_raised[gsi]++;
	ioapic_set_irq(s, gsi, level, n);
	/* PIC IRQ 2 is the cascade input, driven by the slave only. */
	if (gsi < 16 && gsi != 2) {
		bool before = pic_output(&s->pic);

		pic_set_irq(&s->pic, gsi, level);
		lapic_update_pending(s, 0, !before && pic_output(&s->pic), n);
	}
}

static void chip_set_level(struct irq_chip *chip, unsigned int gsi, int level)
{
	struct intc_state *s = container_of(chip, struct intc_state, chip);
	struct intc_notify n = {0};

	intc_lock(s);
	intc_set_gsi_locked(s, gsi, level, &n);
	intc_unlock(s, &n);
}

uint64_t intc_pio_read(struct intc_state *s, intc_pio_read_fn fn, uint64_t off, unsigned int size)
{
	struct intc_notify n = {0};
	uint64_t v = 0;

	intc_lock(s);
	for (unsigned int i = 0; i < size && i < 8; i++)
		v |= (uint64_t)fn(s, (unsigned int)off + i, &n) << (8 * i);
	intc_unlock(s, &n);
	return v;
}

void intc_pio_write(struct intc_state *s, intc_pio_write_fn fn, uint64_t off, uint64_t val,
		    unsigned int size)
{
	struct intc_notify n = {0};

	intc_lock(s);
	for (unsigned int i = 0; i < size && i < 8; i++)
		fn(s, (unsigned int)off + i, (uint8_t)(val >> (8 * i)), &n);
	intc_unlock(s, &n);
}

/* ---- API ---- */

int intc_init(struct intc *ic, unsigned int ncpus, struct loop *loop, const struct intc_ops *ops,
	      void *ctx)
{
	struct intc_state *s;
	unsigned int i;
	int ret;

	ic->s = NULL;
	if (ncpus < 1 || ncpus > INTC_MAX_CPUS || !loop || !ops || !ops->kick) {
		pr_err("intc_init: %u CPUs (1-%u), a loop and ops->kick are needed", ncpus,
		       INTC_MAX_CPUS);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s) + ncpus * sizeof(s->lapic[0]));
	if (!s) {
		pr_err("intc_init: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->chip.set_level = chip_set_level;
	s->ncpus = ncpus;
	s->ops = ops;
	s->ctx = ctx;
	s->loop = loop;
	pic_reset(&s->pic);
	/* The MP table gives the IOAPIC the ID after the CPUs'; the register holds 4 bits. */
	ioapic_reset(&s->ioapic, ncpus & 0xf);
	pit_reset(&s->pit);
	ret = timer_init(s, &s->pit.timer, pit_timer_expire);
	if (ret)
		goto exit_free;
	for (i = 0; i < ncpus; i++) {
		lapic_reset(&s->lapic[i], i);
		ret = timer_init(s, &s->lapic[i].timer, lapic_timer_expire);
		if (ret)
			goto exit_timers;
	}
	/* Only now, with nothing left to fail: a queued read cannot be taken back. */
	timer_read(s, &s->pit.timer);
	for (i = 0; i < ncpus; i++)
		timer_read(s, &s->lapic[i].timer);
	ic->s = s;
	return 0;

exit_timers:
	while (i--)
		close(s->lapic[i].timer.fd);
	close(s->pit.timer.fd);
exit_free:
	pthread_mutex_destroy(&s->lock);
	free(s);
	return ret;
}

void intc_fini(struct intc *ic)
{
	struct intc_state *s = ic->s;

	if (!s)
		return;
	/* Disarmed, a timerfd never completes the read the ring may still hold. */
	intc_timer_disarm(&s->pit.timer);
	close(s->pit.timer.fd);
	for (unsigned int i = 0; i < s->ncpus; i++) {
		intc_timer_disarm(&s->lapic[i].timer);
		close(s->lapic[i].timer.fd);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
	ic->s = NULL;
}

struct irq_chip *intc_irq_chip(struct intc *ic)
{
	return &ic->s->chip;
}

int intc_attach(struct intc *ic, struct bus *pio, struct bus *mmio)
{
	struct intc_state *s = ic->s;
	int ret;

	ret = bus_register(pio, INTC_PIC_MASTER_PORT, 2, &pic_master_ops, s, "pic-master");
	if (!ret)
		ret = bus_register(pio, INTC_PIC_SLAVE_PORT, 2, &pic_slave_ops, s, "pic-slave");
	if (!ret)
		ret = bus_register(pio, INTC_ELCR_PORT, 2, &pic_elcr_ops, s, "elcr");
	if (!ret)
		ret = bus_register(pio, INTC_PIT_PORT, 4, &pit_ops, s, "pit");
	if (!ret)
		ret = bus_register(pio, INTC_PORT_B, 1, &port61_ops, s, "port61");
	if (!ret)
		ret = bus_register(mmio, LAYOUT_IOAPIC, INTC_IOAPIC_SIZE, &ioapic_ops, s, "ioapic");
	if (ret)
		pr_err("bus_register: %s", strerror(-ret));
	return ret;
}

static struct lapic *lapic_of(struct intc *ic, unsigned int cpu)
{
	if (cpu >= ic->s->ncpus) {
		pr_warn_once("CPU %u out of range (%u CPUs)", cpu, ic->s->ncpus);
		return NULL;
	}
	return &ic->s->lapic[cpu];
}

uint64_t intc_lapic_read(struct intc *ic, unsigned int cpu, uint64_t off, unsigned int size)
{
	struct intc_state *s = ic->s;
	struct lapic *l = lapic_of(ic, cpu);
	uint64_t ones = size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
	uint32_t v;

	if (!l)
		return ones;
	/* KVM's rule: 1, 2 or 4 bytes within the first 4 bytes of a 16-byte register. */
	if ((size != 1 && size != 2 && size != 4) || off >= 0x1000 || (off & 0xf) + size > 4) {
		pr_warn_once("LAPIC read of %u bytes at 0x%llx: reads 0", size,
			     (unsigned long long)off);
		return 0;
	}
	intc_lock(s);
	if (!(l->apic_base & (1u << 11)))
		v = ~0u;
	else
		v = lapic_reg_read(s, l, (uint32_t)off & 0xff0) >> (8 * (off & 3));
	pthread_mutex_unlock(&s->lock);
	return v & ones;
}

void intc_lapic_write(struct intc *ic, unsigned int cpu, uint64_t off, uint64_t val,
		      unsigned int size)
{
	struct intc_state *s = ic->s;
	struct lapic *l = lapic_of(ic, cpu);
	struct intc_notify n = {0};

	if (!l)
		return;
	if (size != 4 || off >= 0x1000 || (off & 0xf)) {
		pr_warn_once("LAPIC write of %u bytes at 0x%llx: dropped", size,
			     (unsigned long long)off);
		return;
	}
	intc_lock(s);
	if (l->apic_base & (1u << 11))
		lapic_reg_write(s, l, (uint32_t)off, (uint32_t)val, &n);
	else
		pr_warn_once("write to a disabled local APIC (IA32_APIC_BASE): dropped");
	intc_unlock(s, &n);
}

uint64_t intc_apic_base(struct intc *ic, unsigned int cpu)
{
	struct lapic *l = lapic_of(ic, cpu);
	uint64_t v;

	if (!l)
		return 0;
	intc_lock(ic->s);
	v = l->apic_base;
	pthread_mutex_unlock(&ic->s->lock);
	return v;
}

int intc_set_apic_base(struct intc *ic, unsigned int cpu, uint64_t val)
{
	struct lapic *l = lapic_of(ic, cpu);
	struct intc_notify n = {0};
	int ret;

	if (!l)
		return -EINVAL;
	intc_lock(ic->s);
	ret = lapic_set_base(ic->s, l, val, &n);
	intc_unlock(ic->s, &n);
	return ret;
}

bool intc_pending(struct intc *ic, unsigned int cpu)
{
	if (cpu >= ic->s->ncpus)
		return false;
	return atomic_load_explicit(&ic->s->lapic[cpu].pending, memory_order_acquire);
}

int intc_ack(struct intc *ic, unsigned int cpu)
{
	struct intc_notify n = {0};
	int v;

	if (!lapic_of(ic, cpu))
		return -1;
	intc_lock(ic->s);
	v = lapic_ack(ic->s, cpu, &n);
	intc_unlock(ic->s, &n);
	return v;
}

void intc_print_stats(struct intc *ic, FILE *f)
{
	struct intc_state *s = ic->s;
	uint64_t timer_irqs = 0, ipis = 0, irqs = 0;

	intc_lock(s);
	for (unsigned int i = 0; i < s->ncpus; i++) {
		timer_irqs += s->lapic[i].timer.fires;
		ipis += s->lapic[i].ipis;
		irqs += s->lapic[i].irqs;
	}
	fprintf(f,
		"intc: %llu LAPIC interrupts, %llu ExtINT, %llu spurious PIC, %llu IPIs sent, "
		"%llu LAPIC timer and %llu PIT expiries; GSI assertions:",
		(unsigned long long)irqs, (unsigned long long)s->extint_acks,
		(unsigned long long)s->pic.spurious, (unsigned long long)ipis,
		(unsigned long long)timer_irqs, (unsigned long long)s->pit.timer.fires);
	for (unsigned int g = 0; g < INTC_GSIS; g++)
		if (s->gsi_raised[g])
			fprintf(f, " %u:%llu", g, (unsigned long long)s->gsi_raised[g]);
	fprintf(f, "\n");
	pthread_mutex_unlock(&s->lock);
}
