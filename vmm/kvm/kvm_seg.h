/* kvm_seg.h: segment registers between KVM's form (struct kvm_segment) and the instruction
 * core's (struct emu_seg), for every file here that moves CPU state between the two. */
#ifndef MVM_KVM_SEG_H
#define MVM_KVM_SEG_H

#include <linux/kvm.h>

#include "emu/emu.h"

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
