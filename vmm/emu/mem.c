/* mem.c: the emulator's view of memory and operands: segmentation, page walks, RAM and MMIO,
 * and the write log that makes an instruction's stores all-or-nothing. */
#include <string.h>

#include "emu_internal.h"

static bool canonical(uint64_t la)
{
	return (uint64_t)((int64_t)(la << 16) >> 16) == la;
}

int emu_linear(struct emu_ctx *ctx, enum emu_sreg seg, uint64_t ea, uint32_t len, bool write,
	       uint64_t *la)
{
	const struct emu_cpu *c = ctx->cpu;
	const struct emu_seg *s = &c->seg[seg];
	uint8_t vector = seg == EMU_SS ? EXC_SS : EXC_GP;

	if (emu_64bit(c)) {
		/* Only FS and GS have a base in 64-bit mode; no limits (SDM Vol. 3A 3.2.4). */
		uint64_t addr = ea + (seg == EMU_FS || seg == EMU_GS ? s->base : 0);

		if (!canonical(addr) || !canonical(addr + len - 1))
			return emu_raise(ctx, vector, true, 0);
		*la = addr;
		return EMU_OK;
	}
	if (!(c->cr0 & CR0_PE)) {
		*la = (s->base + (ea & 0xffff)) & 0xfffff;
		return EMU_OK;
	}
	/* Protected mode: a null or unusable segment, writes to read-only data or code, and
	 * accesses past an expand-up limit fault. Expand-down segments are not used by the
	 * guests we run; refuse rather than guess. */
	if (!s->present)
		return emu_raise(ctx, vector, true, 0);
	if (s->s && !(s->type & 8) && (s->type & 4))
		return emu_unsupported(ctx, "expand-down data segment");
	if (write && ((s->type & 8) || !(s->type & 2)))
		return emu_raise(ctx, vector, true, 0);
	if (ea > s->limit || len - 1 > s->limit - ea)
		return emu_raise(ctx, vector, true, 0);
	*la = (uint32_t)(s->base + ea);
	return EMU_OK;
}

/* Whether two walks used the same entries, read the same, for the same bits, the same kind
 * of access on the same page with the same paging state. */
static bool same_walk(const struct emu_walk_ad *a, const struct emu_walk_ad *b)
{
	return a->n == b->n && a->wide == b->wide && a->acc == b->acc &&
	       a->maxphy == b->maxphy && (a->la >> 12) == (b->la >> 12) && a->cr0 == b->cr0 &&
	       a->cr3 == b->cr3 && a->cr4 == b->cr4 && a->efer == b->efer &&
	       a->rflags == b->rflags && !memcmp(a->entry, b->entry, sizeof(a->entry)) &&
	       !memcmp(a->old, b->old, sizeof(a->old)) && !memcmp(a->bits, b->bits, sizeof(a->bits));
}

/* Keeps the A/D updates of a walk for the commit. Walks repeat (one per page and access),
 * so a record equal to one already kept is dropped; when the log is full they are made now,
 * which the CPU may do too (it sets accessed bits speculatively, SDM 4.8). Returns false
 * when that found an entry changed since the walk: walk again. */
static bool defer_ad(struct emu_ctx *ctx, struct emu_walk_ad *ad)
{
	for (unsigned int i = 0; i < ctx->nad; i++)
		if (same_walk(&ctx->ad[i], ad))
			return true;
	if (ctx->nad == EMU_ADLOG_MAX)
		return emu_walk_apply(ad);
	ctx->ad[ctx->nad++] = *ad;
	return true;
}

static int translate(struct emu_ctx *ctx, uint64_t la, unsigned int acc, uint64_t *gpa)
{
	struct emu_walk_ad ad;
	enum emu_walk_status s;

	if (emu_cpl(ctx->cpu) == 3 && !(acc & EMU_ACC_IMPLICIT))
		acc |= EMU_ACC_USER;
	do {
		s = emu_walk_record(ctx->cpu, ctx->env->mem, ctx->maxphy, la, acc, gpa,
				    &ctx->res->fault, &ad);
		if (s == WALK_FAULT)
			return EMU_EXC;
		if (s == WALK_UNSUPPORTED)
			return emu_unsupported(ctx,
					       "page tables for 0x%llx are outside RAM or 5-level",
					       (unsigned long long)la);
	} while (!defer_ad(ctx, &ad));
	return EMU_OK;
}

/* MMIO in naturally sized pieces of at most 8 bytes, so a device sees the guest's width. */
static void mmio_access(struct emu_ctx *ctx, uint64_t gpa, uint8_t *buf, uint32_t len,
			bool write)
{
	while (len) {
		unsigned int size = 8;

		while (size > len || (gpa & (size - 1)))
			size >>= 1;
		if (ctx->env->mmio)
			bus_dispatch(ctx->env->mmio, gpa, buf, size, write);
		else if (!write)
			memset(buf, 0xff, size);
		gpa += size;
		buf += size;
		len -= size;
	}
}

/* Data breakpoints the access meets (SDM Vol. 3A 17.3.1.2), kept for the caller's trap: any
 * data access, explicit or not (descriptor tables, the stack of an interrupt), but no
 * instruction fetch. */
static void check_breakpoints(struct emu_ctx *ctx, uint64_t la, uint32_t len, bool write)
{
	if (ctx->cpu->dr[7] & EMU_DR7_ENABLES)
		ctx->res->db_hits |= emu_dbg_data_hits(ctx->cpu, la, len, write);
}

int emu_read_linear(struct emu_ctx *ctx, uint64_t la, void *dst, uint32_t len, unsigned int acc)
{
	uint8_t *out = dst;

	if (!(acc & EMU_ACC_FETCH))
		check_breakpoints(ctx, la, len, false);

	while (len) {
		uint32_t chunk = 4096 - (la & 4095);
		uint64_t gpa;
		void *hva;
		int ret;

		if (chunk > len)
			chunk = len;
		ret = translate(ctx, la, acc, &gpa);
		if (ret)
			return ret;
		hva = gpa_to_hva(ctx->env->mem, gpa, chunk);
		if (hva)
			memcpy(out, hva, chunk);
		else
			mmio_access(ctx, gpa, out, chunk, false);
		la += chunk;
		out += chunk;
		len -= chunk;
	}
	return EMU_OK;
}

int emu_write_linear(struct emu_ctx *ctx, uint64_t la, const void *src, uint32_t len,
		     unsigned int acc)
{
	const uint8_t *in = src;

	check_breakpoints(ctx, la, len, true);
	while (len) {
		uint32_t chunk = 4096 - (la & 4095);
		struct emu_wlog *w;
		uint64_t gpa;
		int ret;

		if (chunk > len)
			chunk = len;
		ret = translate(ctx, la, acc | EMU_ACC_WRITE, &gpa);
		if (ret)
			return ret;
		if (ctx->nw == EMU_WLOG_MAX || ctx->wused + chunk > EMU_WBUF_SIZE)
			return emu_unsupported(ctx, "instruction writes more than %u bytes",
					       EMU_WBUF_SIZE);
		w = &ctx->wlog[ctx->nw++];
		w->gpa = gpa;
		w->len = chunk;
		w->off = ctx->wused;
		w->mmio = gpa_to_hva(ctx->env->mem, gpa, chunk) == NULL;
		memcpy(ctx->wbuf + ctx->wused, in, chunk);
		ctx->wused += chunk;
		la += chunk;
		in += chunk;
		len -= chunk;
	}
	return EMU_OK;
}

void *emu_ram_pointer(struct emu_ctx *ctx, uint64_t la, uint32_t len, bool write, int *status)
{
	uint64_t gpa;
	void *hva;

	*status = EMU_OK;
	if ((la & 4095) + len > 4096) {
		*status = emu_unsupported(ctx, "locked access across a page boundary");
		return NULL;
	}
	*status = translate(ctx, la, write ? EMU_ACC_WRITE : 0, &gpa);
	if (*status)
		return NULL;
	check_breakpoints(ctx, la, len, write);
	hva = gpa_to_hva(ctx->env->mem, gpa, len);
	if (!hva)
		*status = emu_unsupported(ctx, "locked access to MMIO at 0x%llx",
					  (unsigned long long)gpa);
	return hva;
}

/* Walks the access of (ad), whose entries changed since its walk, again: EMU_EXC with the
 * fault it now raises, EMU_RETRY if it now goes to another page (the instruction read or
 * wrote the old one: it must run again), EMU_OK with (*ad) the new walk. */
static int rewalk(struct emu_ctx *ctx, struct emu_walk_ad *ad)
{
	uint64_t was = ad->gpa, gpa;

	switch (emu_walk_redo(ctx->env->mem, ad, &gpa, &ctx->res->fault)) {
	case WALK_OK:
		return gpa == was ? EMU_OK : EMU_RETRY;
	case WALK_FAULT:
		return EMU_EXC;
	default:
		return emu_unsupported(ctx, "page tables for 0x%llx are outside RAM or 5-level",
				       (unsigned long long)ad->la);
	}
}

/* The deferred A/D updates. First every walk must still be what the page tables say: one
 * whose entries changed (another vCPU made the page not present, or remapped it) is walked
 * again, and if that faults the instruction faults with nothing changed. Then the bits are
 * set, each by compare-and-exchange on the value walked; an entry that changes in between
 * is walked again the same way (a fault then leaves the bits already set on entries that had
 * not changed, as a CPU restarting its walk does). */
static int commit_ad(struct emu_ctx *ctx)
{
	int ret;

	for (unsigned int i = 0; i < ctx->nad; i++)
		while (!emu_walk_current(&ctx->ad[i]))
			if ((ret = rewalk(ctx, &ctx->ad[i])))
				return ret;
	for (unsigned int i = 0; i < ctx->nad; i++)
		while (!emu_walk_apply(&ctx->ad[i]))
			if ((ret = rewalk(ctx, &ctx->ad[i])))
				return ret;
	return EMU_OK;
}

int emu_commit(struct emu_ctx *ctx)
{
	int ret = commit_ad(ctx);

	ctx->nad = 0;
	if (ret) {
		ctx->nw = 0;
		ctx->wused = 0;
		return ret;
	}
	for (unsigned int i = 0; i < ctx->nw; i++) {
		struct emu_wlog *w = &ctx->wlog[i];
		uint8_t *data = ctx->wbuf + w->off;

		if (w->mmio)
			mmio_access(ctx, w->gpa, data, w->len, true);
		else
			memcpy(gpa_to_hva(ctx->env->mem, w->gpa, w->len), data, w->len);
		if (!w->mmio && ctx->env->ram_written)
			ctx->env->ram_written(ctx->env->ram_written_ctx, w->gpa, w->len);
	}
	ctx->nw = 0;
	ctx->wused = 0;
	return EMU_OK;
}

/* --- operands --- */

int emu_gpr_index(ZydisRegister reg)
{
	ZydisRegister big = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);

	if (big >= ZYDIS_REGISTER_RAX && big <= ZYDIS_REGISTER_R15)
		return big - ZYDIS_REGISTER_RAX;
	return -1;
}

static bool high_byte(ZydisRegister reg)
{
	return reg == ZYDIS_REGISTER_AH || reg == ZYDIS_REGISTER_CH || reg == ZYDIS_REGISTER_DH ||
	       reg == ZYDIS_REGISTER_BH;
}

uint64_t emu_reg_read(struct emu_ctx *ctx, ZydisRegister reg)
{
	int i = emu_gpr_index(reg);
	unsigned int width;

	if (reg == ZYDIS_REGISTER_RIP || reg == ZYDIS_REGISTER_EIP)
		return ctx->next_rip;
	if (i < 0)
		return 0;
	if (high_byte(reg))
		return (ctx->cpu->gpr[i] >> 8) & 0xff;
	width = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg);
	return ctx->cpu->gpr[i] & emu_mask(width);
}

void emu_reg_write(struct emu_ctx *ctx, ZydisRegister reg, uint64_t val)
{
	int i = emu_gpr_index(reg);
	uint64_t *r;
	unsigned int width;

	if (i < 0)
		return;
	r = &ctx->cpu->gpr[i];
	width = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg);
	if (high_byte(reg))
		*r = (*r & ~0xff00ull) | ((val & 0xff) << 8);
	else if (width == 32)
		*r = (uint32_t)val; /* 32-bit writes zero the upper half (SDM Vol. 1 3.4.1.1) */
	else if (width == 64)
		*r = val;
	else
		*r = (*r & ~emu_mask(width)) | (val & emu_mask(width));
	ctx->cpu->dirty |= EMU_DIRTY_GPRS;
}

uint64_t emu_op_ea(struct emu_ctx *ctx, const ZydisDecodedOperand *op)
{
	uint64_t ea = 0;

	if (op->mem.base != ZYDIS_REGISTER_NONE)
		ea += emu_reg_read(ctx, op->mem.base);
	if (op->mem.index != ZYDIS_REGISTER_NONE)
		ea += emu_reg_read(ctx, op->mem.index) * op->mem.scale;
	if (op->mem.disp.has_displacement)
		ea += (uint64_t)op->mem.disp.value;
	return ea & emu_mask(ctx->insn.address_width);
}

static enum emu_sreg zydis_sreg(ZydisRegister r)
{
	switch (r) {
	case ZYDIS_REGISTER_ES: return EMU_ES;
	case ZYDIS_REGISTER_CS: return EMU_CS;
	case ZYDIS_REGISTER_SS: return EMU_SS;
	case ZYDIS_REGISTER_FS: return EMU_FS;
	case ZYDIS_REGISTER_GS: return EMU_GS;
	default: return EMU_DS;
	}
}

int emu_op_mem_la(struct emu_ctx *ctx, const ZydisDecodedOperand *op, uint32_t len, bool write,
		  uint64_t *la)
{
	return emu_linear(ctx, zydis_sreg(op->mem.segment), emu_op_ea(ctx, op), len, write, la);
}

int emu_op_mem_la_disp(struct emu_ctx *ctx, const ZydisDecodedOperand *op, int64_t disp,
		       uint32_t len, bool write, uint64_t *la)
{
	/* The effective address wraps at the address size, as the CPU computes it; segment
	 * limits and canonical form are then checked on the address actually used. */
	uint64_t ea = (emu_op_ea(ctx, op) + (uint64_t)disp) & emu_mask(ctx->insn.address_width);

	return emu_linear(ctx, zydis_sreg(op->mem.segment), ea, len, write, la);
}

int emu_op_read(struct emu_ctx *ctx, const ZydisDecodedOperand *op, uint64_t *val)
{
	return emu_op_read_acc(ctx, op, val, 0);
}

int emu_op_read_acc(struct emu_ctx *ctx, const ZydisDecodedOperand *op, uint64_t *val,
		    unsigned int acc)
{
	uint32_t bytes = op->size / 8;
	uint64_t la;
	int ret;

	switch (op->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		*val = emu_reg_read(ctx, op->reg.value);
		return EMU_OK;
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		*val = op->imm.value.u & emu_mask(op->size);
		return EMU_OK;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		if (bytes == 0 || bytes > 8)
			return emu_unsupported(ctx, "%u-bit memory operand", op->size);
		ret = emu_op_mem_la(ctx, op, bytes, acc & EMU_ACC_WRITE, &la);
		if (ret)
			return ret;
		*val = 0;
		return emu_read_linear(ctx, la, val, bytes, acc);
	default:
		return emu_unsupported(ctx, "operand type %d", op->type);
	}
}

int emu_op_write(struct emu_ctx *ctx, const ZydisDecodedOperand *op, uint64_t val)
{
	uint32_t bytes = op->size / 8;
	uint64_t la;
	int ret;

	switch (op->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		emu_reg_write(ctx, op->reg.value, val);
		return EMU_OK;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		if (bytes == 0 || bytes > 8)
			return emu_unsupported(ctx, "%u-bit memory operand", op->size);
		ret = emu_op_mem_la(ctx, op, bytes, true, &la);
		if (ret)
			return ret;
		return emu_write_linear(ctx, la, &val, bytes, 0);
	default:
		return emu_unsupported(ctx, "operand type %d as destination", op->type);
	}
}

void emu_xsave_touch(struct emu_ctx *ctx, unsigned int component)
{
	uint64_t bv;

	memcpy(&bv, ctx->cpu->xsave + XSAVE_HDR, 8);
	bv |= 1ull << component;
	memcpy(ctx->cpu->xsave + XSAVE_HDR, &bv, 8);
	ctx->cpu->dirty |= EMU_DIRTY_XSAVE;
}

/* Where vector register (id)'s bytes [lo, lo+16) live in the XSAVE image, or NULL. */
static uint8_t *vec_lane(struct emu_ctx *ctx, unsigned int id, unsigned int lane)
{
	const struct emu_features *f = ctx->env->features;

	if (id >= 16)
		return NULL;
	if (lane == 0)
		return ctx->cpu->xsave + XSAVE_XMM0 + 16 * id;
	if (lane == 1 && f->xsave_offset[XFEATURE_YMM])
		return ctx->cpu->xsave + f->xsave_offset[XFEATURE_YMM] + 16 * id;
	return NULL;
}

static int vec_reg_id(ZydisRegister reg, unsigned int *id)
{
	ZydisRegisterClass cls = ZydisRegisterGetClass(reg);

	if (cls != ZYDIS_REGCLASS_XMM && cls != ZYDIS_REGCLASS_YMM)
		return -1;
	*id = ZydisRegisterGetId(reg);
	return 0;
}

int emu_op_read_vec(struct emu_ctx *ctx, const ZydisDecodedOperand *op, void *buf,
		    uint32_t bytes)
{
	uint8_t *out = buf;
	unsigned int id;
	uint64_t la;
	int ret;

	if (op->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		ret = emu_op_mem_la(ctx, op, bytes, false, &la);
		return ret ? ret : emu_read_linear(ctx, la, buf, bytes, 0);
	}
	if (op->type != ZYDIS_OPERAND_TYPE_REGISTER)
		return emu_unsupported(ctx, "vector operand type %d", op->type);
	if (vec_reg_id(op->reg.value, &id) == 0) {
		for (unsigned int lane = 0; lane * 16 < bytes; lane++) {
			uint8_t *p = vec_lane(ctx, id, lane);
			uint32_t n = bytes - lane * 16 < 16 ? bytes - lane * 16 : 16;

			if (!p)
				return emu_unsupported(ctx, "vector register %s",
						       ZydisRegisterGetString(op->reg.value));
			memcpy(out + lane * 16, p, n);
		}
		return EMU_OK;
	}
	if (emu_gpr_index(op->reg.value) >= 0) {
		uint64_t v = emu_reg_read(ctx, op->reg.value);

		memset(buf, 0, bytes);
		memcpy(buf, &v, bytes < 8 ? bytes : 8);
		return EMU_OK;
	}
	return emu_unsupported(ctx, "register %s", ZydisRegisterGetString(op->reg.value));
}

int emu_op_write_vec(struct emu_ctx *ctx, const ZydisDecodedOperand *op, const void *buf,
		     uint32_t bytes, bool zero_upper)
{
	const uint8_t *in = buf;
	unsigned int id;
	uint64_t la;
	int ret;

	if (op->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		ret = emu_op_mem_la(ctx, op, bytes, true, &la);
		return ret ? ret : emu_write_linear(ctx, la, buf, bytes, 0);
	}
	if (op->type == ZYDIS_OPERAND_TYPE_REGISTER && emu_gpr_index(op->reg.value) >= 0) {
		uint64_t v = 0;

		memcpy(&v, buf, bytes < 8 ? bytes : 8);
		emu_reg_write(ctx, op->reg.value, v);
		return EMU_OK;
	}
	if (op->type != ZYDIS_OPERAND_TYPE_REGISTER || vec_reg_id(op->reg.value, &id))
		return emu_unsupported(ctx, "vector destination");
	/* Legacy SSE writes keep bits above 128 (and above the written width inside the XMM
	 * register when writing less); VEX writes zero everything above the written width. */
	for (unsigned int lane = 0; lane < 2; lane++) {
		uint8_t *p = vec_lane(ctx, id, lane);
		uint32_t start = lane * 16;

		if (!p) {
			if (lane * 16 < bytes)
				return emu_unsupported(ctx, "vector register %s",
						       ZydisRegisterGetString(op->reg.value));
			break;
		}
		if (start < bytes) {
			uint32_t n = bytes - start < 16 ? bytes - start : 16;

			memcpy(p, in + start, n);
			if (zero_upper)
				memset(p + n, 0, 16 - n);
			emu_xsave_touch(ctx, lane == 0 ? XFEATURE_SSE : XFEATURE_YMM);
		} else if (zero_upper) {
			memset(p, 0, 16);
			emu_xsave_touch(ctx, lane == 0 ? XFEATURE_SSE : XFEATURE_YMM);
		}
	}
	/* With AVX-512 enabled a VEX write also zeroes bits 511:256 (ZMM_Hi256, component 6). */
	if (zero_upper && (ctx->cpu->xcr0 & (1u << 6)) && ctx->env->features->xsave_offset[6]) {
		memset(ctx->cpu->xsave + ctx->env->features->xsave_offset[6] + 32 * id, 0, 32);
		emu_xsave_touch(ctx, 6);
	}
	return EMU_OK;
}
