/* irq.h: an interrupt line as devices see it, independent of who implements it (KVM's
 * in-kernel IOAPIC/PIC in the VM, a recorder in unit tests). */
#ifndef MVM_CORE_IRQ_H
#define MVM_CORE_IRQ_H

struct irq_chip {
	/* Drives line (gsi) to (level) 0 or 1. Any thread. */
	void (*set_level)(struct irq_chip *chip, unsigned int gsi, int level);
};

struct irq_line {
	struct irq_chip *chip;	/* borrowed */
	unsigned int gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	l->chip->set_level(l->chip, l->gsi, level);
}

#endif
