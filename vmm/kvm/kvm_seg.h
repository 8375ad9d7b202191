/* kvm_seg.h: general registers and segment registers between KVM's form (struct kvm_regs,
 * struct kvm_segment) and the instruction core's, for every file here that moves CPU state
 * between the two. */
#ifndef MVM_KVM_SEG_H
#define MVM_KVM_SEG_H

#include <linux/kvm.h>

#include "emu/emu.h"

/* The 16 general registers, in the core's order (EMU_RAX ... EMU_R15). */
static inline void gprs_from_kvm(uint64_t gpr[16], const struct kvm_regs *r)
{
	const uint64_t g[16] = {r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
				r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15};

	for (unsigned int i = 0; i < 16; i++)
		gpr[i] = g[i];
}

static inline struct kvm_regs regs_to_kvm(const uint64_t g[16], uint64_t rip, uint64_t rflags)
{
	return (struct kvm_regs){
		.rax = g[0], .rcx = g[1], .rdx = g[2], .rbx = g[3], .rsp = g[4], .rbp = g[5],
		.rsi = g[6], .rdi = g[7], .r8 = g[8], .r9 = g[9], .r10 = g[10], .r11 = g[11],
		.r12 = g[12], .r13 = g[13], .r14 = g[14], .r15 = g[15], .rip = rip,
		.rflags = rflags,
	};
}

static inline void seg_from_kvm(struct emu_seg *s, const struct kvm_segment *k)
{
	*s = (struct emu_seg){
		.base = k->base, .limit = k->limit, .sel = k->selector, .type = k->type,
		.s = k->s, .dpl = k->dpl, .present = k->present && !k->unusable, .db = k->db,
		.l = k->l, .g = k->g,
	};
}

static inline void seg_to_kvm(struct kvm_segment *k, const struct emu_seg *s)
{
	k->base = s->base;
	k->limit = s->limit;
	k->selector = s->sel;
	k->type = s->type;
	k->s = s->s;
	k->dpl = s->dpl;
	k->present = s->present;
	k->unusable = !s->present;
	k->db = s->db;
	k->l = s->l;
	k->g = s->g;
}

#endif
