/* uop_internal.h: what the uop handlers share: register and operand access, the inline TLB
 * fast path for memory, lazy flags, and the handler table the decoder fills uops from. */
#ifndef MVM_EMU_UOP_INTERNAL_H
#define MVM_EMU_UOP_INTERNAL_H

#include <string.h>

#include "emu/vcpu.h"
#include "emu_internal.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define UOP_F_MEMDST (1u << 6)	/* the memory operand is the destination */

/* --- registers --- */

static inline uint64_t size_mask(unsigned int osz)
{
	return osz >= 8 ? ~0ull : (1ull << (osz * 8)) - 1;
}

static inline uint64_t sign_bit(unsigned int osz)
{
	return 1ull << (osz * 8 - 1);
}

static inline int64_t sext(uint64_t v, unsigned int osz)
{
	unsigned int sh = 64 - osz * 8;

	return (int64_t)(v << sh) >> sh;
}

static inline uint64_t reg_get(const struct emu_vcpu *v, unsigned int r, unsigned int osz)
{
	uint64_t x;

	if (unlikely(r >= 16))
		return (v->cpu.gpr[r - 16] >> 8) & 0xff;
	x = v->cpu.gpr[r];
	switch (osz) {
	case 1: return x & 0xff;
	case 2: return x & 0xffff;
	case 4: return (uint32_t)x;
	default: return x;
	}
}

/* Writes keep the bits above a 8- or 16-bit register and zero those above a 32-bit one (SDM
 * Vol. 1 3.4.1.1). */
static inline void reg_set(struct emu_vcpu *v, unsigned int r, unsigned int osz, uint64_t val)
{
	uint64_t *p;

	if (unlikely(r >= 16)) {
		p = &v->cpu.gpr[r - 16];
		*p = (*p & ~0xff00ull) | ((val & 0xff) << 8);
		return;
	}
	p = &v->cpu.gpr[r];
	switch (osz) {
	case 1: *p = (*p & ~0xffull) | (val & 0xff); break;
	case 2: *p = (*p & ~0xffffull) | (val & 0xffff); break;
	case 4: *p = (uint32_t)val; break;
	default: *p = val; break;
	}
}

/* --- faults --- */

static inline int uop_raise(struct emu_vcpu *v, uint8_t vector, bool has_error, uint32_t error)
{
	v->fault = (struct emu_fault){.vector = vector, .has_error_code = has_error,
				      .error_code = error};
	return EXIT_FAULT;
}

static inline int raise_gp0(struct emu_vcpu *v)
{
	return uop_raise(v, EXC_GP, true, 0);
}

static inline int raise_ud(struct emu_vcpu *v)
{
	return uop_raise(v, EXC_UD, false, 0);
}

int uop_stop(struct emu_vcpu *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Implicit supervisor access of (len) bytes at linear (la): descriptor tables and the TSS
 * (SDM Vol. 3A 4.6: not CPL-checked). 0, or the fault it raised (op_segment.c). */
int sys_access(struct emu_vcpu *v, uint64_t la, void *buf, unsigned int len, bool write);

/* --- addresses and memory --- */

static inline uint64_t asz_mask(unsigned int asz)
{
	return asz >= 8 ? ~0ull : (1ull << (asz * 8)) - 1;
}

static inline uint64_t uop_ea(const struct emu_vcpu *v, const struct emu_uop *u)
{
	uint64_t ea = (uint64_t)u->disp;

	if (u->base != UOP_REG_NONE)
		ea += v->cpu.gpr[u->base];
	if (u->index != UOP_REG_NONE)
		ea += v->cpu.gpr[u->index] * u->scale;
	return ea & asz_mask(u->asz);
}

/* Segmentation outside 64-bit mode (limits, types, real mode): mem.c's rules. */
int uop_linear_slow(struct emu_vcpu *v, unsigned int seg, uint64_t ea, unsigned int len,
		    bool write, uint64_t *la);

/* Linear address of (seg:ea). In 64-bit mode only FS and GS add a base; canonical form is
 * checked by the memory access itself (the TLB never holds a non-canonical page). */
static inline int uop_linear(struct emu_vcpu *v, unsigned int seg, uint64_t ea,
			     unsigned int len, bool write, uint64_t *la)
{
	if (likely(v->flat)) {
		*la = ea + v->seg_base[seg];
		return 0;
	}
	return uop_linear_slow(v, seg, ea, len, write, la);
}

/* The slow paths: page walk, TLB fill, page-crossing, MMIO, code pages, faults. (seg) picks
 * #SS over #GP for a non-canonical address. */
int emu_read_slow(struct emu_vcpu *v, uint64_t la, unsigned int len, void *dst,
		  unsigned int seg, enum emu_tlb_kind kind);
int emu_write_slow(struct emu_vcpu *v, uint64_t la, unsigned int len, const void *src,
		   unsigned int seg);

static inline uint64_t load_le(const void *p, unsigned int len)
{
	uint8_t b;
	uint16_t w;
	uint32_t d;
	uint64_t q;

	switch (len) {
	case 1: memcpy(&b, p, 1); return b;
	case 2: memcpy(&w, p, 2); return w;
	case 4: memcpy(&d, p, 4); return d;
	default: memcpy(&q, p, 8); return q;
	}
}

static inline void store_le(void *p, uint64_t val, unsigned int len)
{
	uint8_t b = (uint8_t)val;
	uint16_t w = (uint16_t)val;
	uint32_t d = (uint32_t)val;

	switch (len) {
	case 1: memcpy(p, &b, 1); break;
	case 2: memcpy(p, &w, 2); break;
	case 4: memcpy(p, &d, 4); break;
	default: memcpy(p, &val, 8); break;
	}
}

static inline struct emu_tlb_entry *tlb_hit(struct emu_vcpu *v, enum emu_tlb_kind kind,
					    uint64_t la, unsigned int len)
{
	struct emu_tlb_entry *e = &v->tlb[kind][(la >> 12) & (EMU_TLB_SIZE - 1)];

	if (likely(e->tag == (la & ~0xfffull) && (la & 0xfff) <= 4096u - len))
		return e;
	return NULL;
}

/* Reads (len) 1, 2, 4 or 8 bytes at linear (la). (kind) TLB_WRITE for the read half of a
 * read-modify-write, so a fault reports a write and the write after it cannot fault. */
static inline int mem_read(struct emu_vcpu *v, uint64_t la, unsigned int len, uint64_t *val,
			   unsigned int seg, enum emu_tlb_kind kind)
{
	struct emu_tlb_entry *e = tlb_hit(v, kind, la, len);

	if (likely(e != NULL)) {
		*val = load_le((void *)(uintptr_t)(la + e->addend), len);
		return 0;
	}
	*val = 0;
	return emu_read_slow(v, la, len, val, seg, kind);
}

static inline int mem_write(struct emu_vcpu *v, uint64_t la, unsigned int len, uint64_t val,
			    unsigned int seg)
{
	struct emu_tlb_entry *e = tlb_hit(v, TLB_WRITE, la, len);

	if (likely(e != NULL)) {
		store_le((void *)(uintptr_t)(la + e->addend), val, len);
		return 0;
	}
	return emu_write_slow(v, la, len, &val, seg);
}

/* --- operands of the common two-operand form (see decode.c) --- */

/* The source: immediate, register (rm) or memory. */
static inline int src_get(struct emu_vcpu *v, const struct emu_uop *u, uint64_t *val)
{
	uint64_t la;
	int ret;

	if (u->flags & UOP_F_IMM) {
		*val = u->imm;
		return 0;
	}
	if ((u->flags & (UOP_F_MEM | UOP_F_MEMDST)) == UOP_F_MEM) {
		ret = uop_linear(v, u->seg, uop_ea(v, u), u->osz, false, &la);
		return ret ? ret : mem_read(v, la, u->osz, val, u->seg, TLB_READ);
	}
	*val = reg_get(v, u->rm, u->osz);
	return 0;
}

/* The destination's current value; for memory (*la) is kept for dst_put(). (rmw) false reads
 * a destination that is only compared (cmp, test). */
static inline int dst_get(struct emu_vcpu *v, const struct emu_uop *u, uint64_t *val,
			  uint64_t *la, bool rmw)
{
	int ret;

	if (u->flags & UOP_F_MEMDST) {
		ret = uop_linear(v, u->seg, uop_ea(v, u), u->osz, rmw, la);
		return ret ? ret : mem_read(v, *la, u->osz, val, u->seg, rmw ? TLB_WRITE : TLB_READ);
	}
	*val = reg_get(v, u->reg, u->osz);
	return 0;
}

static inline int dst_put(struct emu_vcpu *v, const struct emu_uop *u, uint64_t la, uint64_t val)
{
	if (u->flags & UOP_F_MEMDST)
		return mem_write(v, la, u->osz, val, u->seg);
	reg_set(v, u->reg, u->osz, val);
	return 0;
}

/* --- stack --- */

static inline unsigned int stack_size(const struct emu_vcpu *v)
{
	if (v->mode64)
		return 8;
	return v->cpu.seg[EMU_SS].db ? 4 : 2;
}

static inline uint64_t sp_get(const struct emu_vcpu *v)
{
	return v->cpu.gpr[EMU_RSP] & asz_mask(stack_size(v));
}

static inline void sp_set(struct emu_vcpu *v, uint64_t sp)
{
	unsigned int ss = stack_size(v);

	if (ss == 8)
		v->cpu.gpr[EMU_RSP] = sp;
	else
		reg_set(v, EMU_RSP, ss, sp);
}

/* Pushes (len) bytes of (val); RSP changes only when the store succeeded. */
static inline int push_val(struct emu_vcpu *v, uint64_t val, unsigned int len)
{
	uint64_t sp = (sp_get(v) - len) & asz_mask(stack_size(v)), la;
	int ret = uop_linear(v, EMU_SS, sp, len, true, &la);

	if (!ret)
		ret = mem_write(v, la, len, val, EMU_SS);
	if (!ret)
		sp_set(v, sp);
	return ret;
}

/* Reads the top of the stack at (off) bytes above RSP without popping. */
static inline int stack_peek(struct emu_vcpu *v, unsigned int off, unsigned int len,
			     uint64_t *val)
{
	uint64_t sp = (sp_get(v) + off) & asz_mask(stack_size(v)), la;
	int ret = uop_linear(v, EMU_SS, sp, len, false, &la);

	return ret ? ret : mem_read(v, la, len, val, EMU_SS, TLB_READ);
}

/* --- devices --- */

/* One access to a device on (bus), timed for --stats (time in devices vs in the engine). */
void emu_device_access(struct emu_vcpu *v, struct bus *bus, uint64_t addr, void *data,
		       unsigned int size, bool write);

/* --- lazy flags (flags.c) --- */

static inline void cc_set(struct emu_vcpu *v, enum emu_cc_op op, unsigned int osz, uint64_t a,
			  uint64_t b, uint64_t res)
{
	v->cc.op = (uint8_t)op;
	v->cc.bits = (uint8_t)(osz * 8);
	v->cc.a = a;
	v->cc.b = b;
	v->cc.res = res;
}

/* CF as of now (cheaper than all of emu_flags()). */
bool emu_cf(const struct emu_vcpu *v);

/* emu_cf() inline for the operations inc/dec/adc/sbb most often follow. */
static inline bool emu_cf_fast(const struct emu_vcpu *v)
{
	const struct emu_cc *c = &v->cc;
	unsigned int sh = 64 - c->bits;

	switch (c->op) {
	case CC_EFLAGS: return v->cpu.rflags & RF_CF;
	case CC_LOGIC: return false;
	case CC_INC:
	case CC_DEC: return c->carry_in;
	case CC_ADD: return (c->res << sh) < (c->a << sh);
	case CC_SUB: return (c->a << sh) < (c->b << sh);
	default: return emu_cf(v);
	}
}
bool emu_cond_slow(const struct emu_vcpu *v, unsigned int cc);

/* Condition (cc) 0-15 in the Jcc encoding order: O NO B AE E NE BE A S NS P NP L GE LE G.
 * The common cases come straight from the lazy operands: shifted to the top of 64 bits, the
 * operands of any size compare as 64-bit values, unsigned and signed. */
static inline bool emu_cond(const struct emu_vcpu *v, unsigned int cc)
{
	const struct emu_cc *c = &v->cc;
	unsigned int sh = 64 - c->bits;
	bool r;

	if (c->op == CC_EFLAGS)
		return emu_cond_slow(v, cc);
	switch (cc >> 1) {
	case 2: /* E: ZF comes from the result whatever the operation */
		return ((c->res << sh) == 0) ^ (cc & 1);
	case 4: /* S */
		return ((int64_t)(c->res << sh) < 0) ^ (cc & 1);
	default:
		break;
	}
	if (c->op == CC_SUB) {
		uint64_t a = c->a << sh, b = c->b << sh;

		switch (cc >> 1) {
		case 1: r = a < b; break;
		case 3: r = a <= b; break;
		case 6: r = (int64_t)a < (int64_t)b; break;
		case 7: r = (int64_t)a <= (int64_t)b; break;
		default: return emu_cond_slow(v, cc);
		}
		return r ^ (cc & 1);
	}
	if (c->op == CC_LOGIC) {
		int64_t res = (int64_t)(c->res << sh);

		switch (cc >> 1) {
		case 0:
		case 1: r = false; break;
		case 3: r = res == 0; break;
		case 6: r = res < 0; break;
		case 7: r = res <= 0; break;
		default: return emu_cond_slow(v, cc);
		}
		return r ^ (cc & 1);
	}
	return emu_cond_slow(v, cc);
}
/* Sets the arithmetic flags in (mask) to (val) and switches to CC_EFLAGS. */
void emu_flags_merge(struct emu_vcpu *v, uint64_t mask, uint64_t val);
/* Parity flag of the low byte of (x). */
static inline uint64_t parity_flag(uint64_t x)
{
	return __builtin_parity((unsigned int)(x & 0xff)) ? 0 : RF_PF;
}
/* ZF, SF and PF of (res) at (osz). */
static inline uint64_t szp_flags(uint64_t res, unsigned int osz)
{
	res &= size_mask(osz);
	return (res == 0 ? RF_ZF : 0) | (res & sign_bit(osz) ? RF_SF : 0) | parity_flag(res);
}

/* --- the handler table --- */

/* Handlers by name: decode.c picks them. Each file defines its own. */
#define UOP_HANDLERS(X)                                                                         \
	X(generic) X(invalid) X(nop) X(stale)                                                   \
	X(mov_rr) X(mov_load) X(mov_store) X(mov_ri) X(movzx) X(movsx) X(lea) X(xchg)   \
	X(cmov) X(setcc) X(bswap) X(cbw) X(cwd) X(lahf) X(sahf) X(push) X(pop) X(pushf)        \
	X(popf) X(enter) X(leave) X(xlat) X(movbe)                                              \
	X(add) X(adc) X(sub) X(sbb) X(and) X(or) X(xor) X(cmp) X(test) X(inc) X(dec) X(neg)    \
	X(not) UOP_ALU_FORMS(X, add) UOP_ALU_FORMS(X, sub) UOP_ALU_FORMS(X, cmp)                \
	UOP_ALU_FORMS(X, and) UOP_ALU_FORMS(X, or) UOP_ALU_FORMS(X, xor) UOP_ALU_FORMS(X, test) \
	X(mov_rr64) X(mov_load64) X(mov_store64)                                                \
	X(mul) X(imul1) X(imul) X(div) X(idiv) X(shift) X(shd) X(bt) X(xadd) X(cmpxchg)        \
	X(flagop) X(bitscan)                                                                    \
	X(jmp) X(jcc) X(jmp_ind) X(call) X(call_ind) X(ret) X(jcxz) X(loop)                    \
	X(movs) X(stos) X(lods) X(cmps) X(scas) X(ins) X(outs)                                  \
	X(in) X(out) X(cli) X(sti) X(hlt) X(cpuid) X(rdmsr) X(wrmsr) X(rdtsc) X(mov_cr)        \
	X(mov_dr) X(lgdt) X(lidt) X(sgdt) X(sidt) X(ltr) X(lldt) X(str) X(sldt) X(mov_sreg_w)  \
	X(mov_sreg_r) X(pop_sreg) X(push_sreg) X(jmp_far) X(call_far) X(ret_far) X(iret)        \
	X(syscall) X(sysret) X(swapgs) X(invlpg) X(clts) X(lmsw) X(smsw) X(ud)                   \
	X(wbinvd) X(rdtscp) X(pause) X(rdpmc)

/* The register forms of one ALU operation (op_alu.c). */
#define UOP_ALU_FORMS(X, n) X(n##_rr) X(n##_ri) X(n##_rr64) X(n##_ri64)
/* Defines handler uop_<name> around a body that returns enum emu_exit: on EXIT_NEXT it
 * goes straight on to the next uop's handler (direct-threaded code: every handler ends in its
 * own indirect jump, which the host predicts far better than one shared dispatch call), and
 * on any other result it records itself in v->cur for the driver (fault address, count). A
 * block ends in a uop that never returns EXIT_NEXT, so the chain of calls is bounded by the
 * block length even where the compiler does not make them tail calls. */
#define UOP_DEF(name)                                                                           \
	static inline int body_##name(struct emu_vcpu *v, const struct emu_uop *u);             \
	int uop_##name(struct emu_vcpu *v, const struct emu_uop *u)                             \
	{                                                                                       \
		int r = body_##name(v, u);                                                      \
		if (likely(r == EXIT_NEXT))                                                     \
			return u[1].fn(v, u + 1);                                               \
		v->cur = u;                                                                     \
		return r;                                                                       \
	}                                                                                       \
	static inline int body_##name(struct emu_vcpu *v, const struct emu_uop *u)

#define UOP_DECLARE(name) int uop_##name(struct emu_vcpu *v, const struct emu_uop *u);
UOP_HANDLERS(UOP_DECLARE)
#undef UOP_DECLARE

/* Control transfer to (target) at the current operand size (masked outside 64-bit mode). */
static inline int branch_to(struct emu_vcpu *v, uint64_t target, unsigned int osz)
{
	if (!v->mode64)
		target &= osz == 2 ? 0xffff : 0xffffffff;
	else if (unlikely((uint64_t)((int64_t)(target << 16) >> 16) != target))
		return raise_gp0(v);
	v->cpu.rip = target;
	return EXIT_BRANCH;
}

/* Leaves the block after (u) completed: the guest goes on at the next instruction. */
static inline int exit_after(struct emu_vcpu *v, const struct emu_uop *u, int code)
{
	v->cpu.rip = u->next_rip;
	return code;
}

static inline uint64_t uop_rip(const struct emu_uop *u)
{
	return u->next_rip - u->len;
}

#endif
