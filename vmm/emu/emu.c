/* emu.c: one instruction: fetch, decode with Zydis, dispatch to its class, commit or fault. */
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "uop_internal.h"

int emu_raise(struct emu_ctx *ctx, uint8_t vector, bool has_error, uint32_t error)
{
	ctx->res->fault = (struct emu_fault){
		.vector = vector, .has_error_code = has_error, .error_code = error};
	return EMU_EXC;
}

int emu_gp0(struct emu_ctx *ctx)
{
	return emu_raise(ctx, EXC_GP, true, 0);
}

int emu_ud(struct emu_ctx *ctx)
{
	return emu_raise(ctx, EXC_UD, false, 0);
}

int emu_unsupported(struct emu_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->res->why, sizeof(ctx->res->why), fmt, ap);
	va_end(ap);
	return EMU_UNSUP;
}

static void decoder_mode(const struct emu_cpu *c, ZydisMachineMode *mode, ZydisStackWidth *sw)
{
	if (emu_64bit(c)) {
		*mode = ZYDIS_MACHINE_MODE_LONG_64;
		*sw = ZYDIS_STACK_WIDTH_64;
	} else if (!(c->cr0 & CR0_PE)) {
		*mode = ZYDIS_MACHINE_MODE_REAL_16;
		*sw = ZYDIS_STACK_WIDTH_16;
	} else if (c->seg[EMU_CS].db) {
		*mode = emu_long_mode(c) ? ZYDIS_MACHINE_MODE_LONG_COMPAT_32
					 : ZYDIS_MACHINE_MODE_LEGACY_32;
		*sw = c->seg[EMU_SS].db ? ZYDIS_STACK_WIDTH_32 : ZYDIS_STACK_WIDTH_16;
	} else {
		*mode = emu_long_mode(c) ? ZYDIS_MACHINE_MODE_LONG_COMPAT_16
					 : ZYDIS_MACHINE_MODE_LEGACY_16;
		*sw = c->seg[EMU_SS].db ? ZYDIS_STACK_WIDTH_32 : ZYDIS_STACK_WIDTH_16;
	}
}

/* Fetches up to 15 bytes at CS:RIP; stops early at a page that faults if some bytes were
 * fetched (the decoder then decides whether they suffice), keeping that fault in (*cut) for
 * when they do not. */
static int fetch(struct emu_ctx *ctx, uint8_t *buf, unsigned int *len, struct emu_fault *cut,
		 bool *truncated)
{
	uint64_t la;
	unsigned int got = 0;
	int ret = emu_linear(ctx, EMU_CS, ctx->cpu->rip, 1, false, &la);

	if (ret)
		return ret;
	while (got < 15) {
		unsigned int chunk = 4096 - ((la + got) & 4095);

		if (chunk > 15 - got)
			chunk = 15 - got;
		ret = emu_read_linear(ctx, la + got, buf + got, chunk, EMU_ACC_FETCH);
		if (ret) {
			if (!got)
				return ret;
			if (ret == EMU_EXC) {
				*cut = ctx->res->fault;
				*truncated = true;
			}
			ctx->res->fault = (struct emu_fault){0};
			ctx->res->why[0] = 0;
			break;
		}
		got += chunk;
	}
	*len = got;
	return EMU_OK;
}

static emu_handler_fn handler_for(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_CLAC:
	case ZYDIS_MNEMONIC_STAC:
	case ZYDIS_MNEMONIC_RDTSCP:
	case ZYDIS_MNEMONIC_RDTSC:
	case ZYDIS_MNEMONIC_RDPID:
	case ZYDIS_MNEMONIC_LAR:
	case ZYDIS_MNEMONIC_LSL:
	case ZYDIS_MNEMONIC_VERR:
	case ZYDIS_MNEMONIC_VERW:
	case ZYDIS_MNEMONIC_MONITOR:
	case ZYDIS_MNEMONIC_MWAIT:
	case ZYDIS_MNEMONIC_INVPCID:
		return emu_exec_system;
	case ZYDIS_MNEMONIC_XSAVE:
	case ZYDIS_MNEMONIC_XSAVE64:
	case ZYDIS_MNEMONIC_XSAVEOPT:
	case ZYDIS_MNEMONIC_XSAVEOPT64:
	case ZYDIS_MNEMONIC_XSAVEC:
	case ZYDIS_MNEMONIC_XSAVEC64:
	case ZYDIS_MNEMONIC_XRSTOR:
	case ZYDIS_MNEMONIC_XRSTOR64:
	case ZYDIS_MNEMONIC_FXSAVE:
	case ZYDIS_MNEMONIC_FXSAVE64:
	case ZYDIS_MNEMONIC_FXRSTOR:
	case ZYDIS_MNEMONIC_FXRSTOR64:
	case ZYDIS_MNEMONIC_XGETBV:
	case ZYDIS_MNEMONIC_XSETBV:
	case ZYDIS_MNEMONIC_LDMXCSR:
	case ZYDIS_MNEMONIC_STMXCSR:
		return emu_exec_xsave;
	case ZYDIS_MNEMONIC_FNINIT:
	case ZYDIS_MNEMONIC_FNCLEX:
	case ZYDIS_MNEMONIC_FWAIT:
	case ZYDIS_MNEMONIC_FNSTCW:
	case ZYDIS_MNEMONIC_FLDCW:
	case ZYDIS_MNEMONIC_FNSTSW:
	case ZYDIS_MNEMONIC_FLD:
	case ZYDIS_MNEMONIC_FST:
	case ZYDIS_MNEMONIC_FSTP:
	case ZYDIS_MNEMONIC_FILD:
	case ZYDIS_MNEMONIC_FIST:
	case ZYDIS_MNEMONIC_FISTP:
	case ZYDIS_MNEMONIC_FLDZ:
	case ZYDIS_MNEMONIC_FLD1:
		return emu_exec_x87;
	case ZYDIS_MNEMONIC_MOVD:
	case ZYDIS_MNEMONIC_MOVQ:
	case ZYDIS_MNEMONIC_MOVDQA:
	case ZYDIS_MNEMONIC_MOVDQU:
	case ZYDIS_MNEMONIC_MOVAPS:
	case ZYDIS_MNEMONIC_MOVUPS:
	case ZYDIS_MNEMONIC_MOVAPD:
	case ZYDIS_MNEMONIC_MOVUPD:
	case ZYDIS_MNEMONIC_MOVNTDQ:
	case ZYDIS_MNEMONIC_MOVNTI:
	case ZYDIS_MNEMONIC_PXOR:
	case ZYDIS_MNEMONIC_XORPS:
	case ZYDIS_MNEMONIC_VMOVD:
	case ZYDIS_MNEMONIC_VMOVQ:
	case ZYDIS_MNEMONIC_VMOVDQA:
	case ZYDIS_MNEMONIC_VMOVDQU:
	case ZYDIS_MNEMONIC_VMOVAPS:
	case ZYDIS_MNEMONIC_VMOVUPS:
	case ZYDIS_MNEMONIC_VPXOR:
	case ZYDIS_MNEMONIC_VZEROUPPER:
		return emu_exec_sse;
	case ZYDIS_MNEMONIC_PCMPEQB:
	case ZYDIS_MNEMONIC_PCMPEQW:
	case ZYDIS_MNEMONIC_PCMPEQD:
	case ZYDIS_MNEMONIC_PCMPGTB:
	case ZYDIS_MNEMONIC_PCMPGTW:
	case ZYDIS_MNEMONIC_PCMPGTD:
	case ZYDIS_MNEMONIC_PMOVMSKB:
	case ZYDIS_MNEMONIC_MOVMSKPS:
	case ZYDIS_MNEMONIC_MOVMSKPD:
	case ZYDIS_MNEMONIC_POR:
	case ZYDIS_MNEMONIC_PAND:
	case ZYDIS_MNEMONIC_PANDN:
	case ZYDIS_MNEMONIC_ORPS:
	case ZYDIS_MNEMONIC_ANDPS:
	case ZYDIS_MNEMONIC_ANDNPS:
	case ZYDIS_MNEMONIC_ORPD:
	case ZYDIS_MNEMONIC_ANDPD:
	case ZYDIS_MNEMONIC_ANDNPD:
	case ZYDIS_MNEMONIC_XORPD:
	case ZYDIS_MNEMONIC_PADDB:
	case ZYDIS_MNEMONIC_PADDW:
	case ZYDIS_MNEMONIC_PADDD:
	case ZYDIS_MNEMONIC_PADDQ:
	case ZYDIS_MNEMONIC_PSUBB:
	case ZYDIS_MNEMONIC_PSUBW:
	case ZYDIS_MNEMONIC_PSUBD:
	case ZYDIS_MNEMONIC_PSUBQ:
	case ZYDIS_MNEMONIC_PADDUSB:
	case ZYDIS_MNEMONIC_PADDUSW:
	case ZYDIS_MNEMONIC_PSUBUSB:
	case ZYDIS_MNEMONIC_PSUBUSW:
	case ZYDIS_MNEMONIC_PADDSB:
	case ZYDIS_MNEMONIC_PADDSW:
	case ZYDIS_MNEMONIC_PSUBSB:
	case ZYDIS_MNEMONIC_PSUBSW:
	case ZYDIS_MNEMONIC_PMINUB:
	case ZYDIS_MNEMONIC_PMAXUB:
	case ZYDIS_MNEMONIC_PMINSW:
	case ZYDIS_MNEMONIC_PMAXSW:
	case ZYDIS_MNEMONIC_PAVGB:
	case ZYDIS_MNEMONIC_PAVGW:
	case ZYDIS_MNEMONIC_PSADBW:
	case ZYDIS_MNEMONIC_PMULLW:
	case ZYDIS_MNEMONIC_PMULHW:
	case ZYDIS_MNEMONIC_PMULHUW:
	case ZYDIS_MNEMONIC_PMULUDQ:
	case ZYDIS_MNEMONIC_PMADDWD:
	case ZYDIS_MNEMONIC_PSHUFD:
	case ZYDIS_MNEMONIC_PSHUFLW:
	case ZYDIS_MNEMONIC_PSHUFHW:
	case ZYDIS_MNEMONIC_PUNPCKLBW:
	case ZYDIS_MNEMONIC_PUNPCKLWD:
	case ZYDIS_MNEMONIC_PUNPCKLDQ:
	case ZYDIS_MNEMONIC_PUNPCKLQDQ:
	case ZYDIS_MNEMONIC_PUNPCKHBW:
	case ZYDIS_MNEMONIC_PUNPCKHWD:
	case ZYDIS_MNEMONIC_PUNPCKHDQ:
	case ZYDIS_MNEMONIC_PUNPCKHQDQ:
	case ZYDIS_MNEMONIC_PACKUSWB:
	case ZYDIS_MNEMONIC_PACKSSWB:
	case ZYDIS_MNEMONIC_PACKSSDW:
	case ZYDIS_MNEMONIC_SHUFPS:
	case ZYDIS_MNEMONIC_SHUFPD:
	case ZYDIS_MNEMONIC_UNPCKLPS:
	case ZYDIS_MNEMONIC_UNPCKHPS:
	case ZYDIS_MNEMONIC_UNPCKLPD:
	case ZYDIS_MNEMONIC_UNPCKHPD:
	case ZYDIS_MNEMONIC_PSLLW:
	case ZYDIS_MNEMONIC_PSLLD:
	case ZYDIS_MNEMONIC_PSLLQ:
	case ZYDIS_MNEMONIC_PSRLW:
	case ZYDIS_MNEMONIC_PSRLD:
	case ZYDIS_MNEMONIC_PSRLQ:
	case ZYDIS_MNEMONIC_PSRAW:
	case ZYDIS_MNEMONIC_PSRAD:
	case ZYDIS_MNEMONIC_PSLLDQ:
	case ZYDIS_MNEMONIC_PSRLDQ:
	case ZYDIS_MNEMONIC_MOVSS:
	case ZYDIS_MNEMONIC_MOVSD:
	case ZYDIS_MNEMONIC_MOVHPS:
	case ZYDIS_MNEMONIC_MOVLPS:
	case ZYDIS_MNEMONIC_MOVHPD:
	case ZYDIS_MNEMONIC_MOVLPD:
	case ZYDIS_MNEMONIC_MOVHLPS:
	case ZYDIS_MNEMONIC_MOVLHPS:
	case ZYDIS_MNEMONIC_PEXTRW:
	case ZYDIS_MNEMONIC_PINSRW:
	case ZYDIS_MNEMONIC_ADDSS:
	case ZYDIS_MNEMONIC_ADDSD:
	case ZYDIS_MNEMONIC_ADDPS:
	case ZYDIS_MNEMONIC_ADDPD:
	case ZYDIS_MNEMONIC_SUBSS:
	case ZYDIS_MNEMONIC_SUBSD:
	case ZYDIS_MNEMONIC_SUBPS:
	case ZYDIS_MNEMONIC_SUBPD:
	case ZYDIS_MNEMONIC_MULSS:
	case ZYDIS_MNEMONIC_MULSD:
	case ZYDIS_MNEMONIC_MULPS:
	case ZYDIS_MNEMONIC_MULPD:
	case ZYDIS_MNEMONIC_DIVSS:
	case ZYDIS_MNEMONIC_DIVSD:
	case ZYDIS_MNEMONIC_DIVPS:
	case ZYDIS_MNEMONIC_DIVPD:
	case ZYDIS_MNEMONIC_SQRTSS:
	case ZYDIS_MNEMONIC_SQRTSD:
	case ZYDIS_MNEMONIC_SQRTPS:
	case ZYDIS_MNEMONIC_SQRTPD:
	case ZYDIS_MNEMONIC_MINSS:
	case ZYDIS_MNEMONIC_MINSD:
	case ZYDIS_MNEMONIC_MINPS:
	case ZYDIS_MNEMONIC_MINPD:
	case ZYDIS_MNEMONIC_MAXSS:
	case ZYDIS_MNEMONIC_MAXSD:
	case ZYDIS_MNEMONIC_MAXPS:
	case ZYDIS_MNEMONIC_MAXPD:
	case ZYDIS_MNEMONIC_CMPSS:
	case ZYDIS_MNEMONIC_CMPSD:
	case ZYDIS_MNEMONIC_CMPPS:
	case ZYDIS_MNEMONIC_CMPPD:
	case ZYDIS_MNEMONIC_COMISS:
	case ZYDIS_MNEMONIC_COMISD:
	case ZYDIS_MNEMONIC_UCOMISS:
	case ZYDIS_MNEMONIC_UCOMISD:
	case ZYDIS_MNEMONIC_CVTSI2SD:
	case ZYDIS_MNEMONIC_CVTSI2SS:
	case ZYDIS_MNEMONIC_CVTTSD2SI:
	case ZYDIS_MNEMONIC_CVTSD2SI:
	case ZYDIS_MNEMONIC_CVTTSS2SI:
	case ZYDIS_MNEMONIC_CVTSS2SI:
	case ZYDIS_MNEMONIC_CVTSS2SD:
	case ZYDIS_MNEMONIC_CVTSD2SS:
	case ZYDIS_MNEMONIC_CVTPS2PD:
	case ZYDIS_MNEMONIC_CVTPD2PS:
	case ZYDIS_MNEMONIC_CVTDQ2PS:
	case ZYDIS_MNEMONIC_CVTDQ2PD:
	case ZYDIS_MNEMONIC_CVTPS2DQ:
	case ZYDIS_MNEMONIC_CVTTPS2DQ:
	case ZYDIS_MNEMONIC_CVTPD2DQ:
	case ZYDIS_MNEMONIC_CVTTPD2DQ:
		return emu_exec_sse2;
	case ZYDIS_MNEMONIC_INT3:
	case ZYDIS_MNEMONIC_INT1:
	case ZYDIS_MNEMONIC_INT:
	case ZYDIS_MNEMONIC_INTO:
		return emu_exec_interrupt;
	case ZYDIS_MNEMONIC_CMPXCHG8B:
	case ZYDIS_MNEMONIC_CMPXCHG16B:
		return emu_exec_atomic;
	default:
		return NULL;
	}
}

/* The time stamp a stand-alone copy of a CPU sees: the one its driver put in (tsc). */
static uint64_t copy_tsc(struct emu_vcpu *v)
{
	return v->cpu.tsc;
}

/* Far JMP/CALL/RET and IRET read and write only registers, segments, memory and the
 * descriptor tables, all in a struct emu_cpu: the KVM fallback runs them too (KVM-PVM hands
 * back, e.g., a far JMP to a TSS, which IA-32e mode answers with #GP). */
static bool far_transfer(const struct emu_uop *u)
{
	return u->fn == uop_jmp_far || u->fn == uop_call_far || u->fn == uop_ret_far ||
	       u->fn == uop_iret;
}

/* Runs the instruction in (bytes) with the engine's uop when it has a pure one (emu/vcpu.h),
 * so each instruction has one implementation whichever driver asks. Returns false to leave it
 * to the class handlers. */
static bool step_uop(struct emu_cpu *cpu, const struct emu_env *env, const uint8_t *bytes,
		     unsigned int len, struct emu_result *res)
{
	static _Thread_local struct emu_vcpu tv;
	static const struct emu_platform plat = {.tsc = copy_tsc};
	uint8_t buf[24] = {0};
	struct emu_uop us[2];
	int ret;

#define u us[0]
	memcpy(buf, bytes, len < 15 ? len : 15);
	emu_vcpu_init(&tv, 0, env, &plat);
	memcpy(&tv.cpu, cpu, sizeof(*cpu));
	tv.cc.op = CC_EFLAGS;
	emu_vcpu_mode_changed(&tv, true);
	if (emu_decode(&tv, cpu->rip, buf, len, &u) <= 0 ||
	    !(emu_uop_pure(&u) || far_transfer(&u)))
		return false;
	res->insn_len = u.len;
	res->mnemonic = ZydisMnemonicGetString((ZydisMnemonic)u.mnemonic);
	res->mnemonic_id = u.mnemonic;
	if ((u.flags & UOP_F_LOCK) && (u.flags & UOP_F_MEMDST)) {
		/* Other vCPU threads run at the same time: a locked read-modify-write would
		 * need a host atomic of the same width, which the uops do not do. */
		snprintf(res->why, sizeof(res->why), "locked %s", res->mnemonic);
		res->status = EMU_UNSUPPORTED;
		return true;
	}
	us[1] = (struct emu_uop){.fn = uop_single_end};
	ret = u.fn(&tv, &u);
#undef u
	switch (ret) {
	case EXIT_NEXT:
		tv.cpu.rip = us[0].next_rip;
		/* fall through */
	case EXIT_BRANCH:
	case EXIT_JUMP_TAKEN:
	case EXIT_JUMP_NOT:
	case EXIT_MODE: /* a far transfer: CS (and SS) changed too */
		tv.cpu.rflags = emu_flags(&tv) & ~RF_RF;
		tv.cpu.dirty = EMU_DIRTY_GPRS | (ret == EXIT_MODE ? EMU_DIRTY_SREGS : 0);
		memcpy(cpu, &tv.cpu, sizeof(*cpu));
		res->db_hits = tv.dbg_hits;
		res->status = EMU_DONE;
		return true;
	case EXIT_FAULT:
		res->fault = tv.fault;
		res->status = EMU_FAULT;
		return true;
	default:
		snprintf(res->why, sizeof(res->why), "%s", tv.why);
		res->status = EMU_UNSUPPORTED;
		return true;
	}
}

/* emu_step(), or with (classes_only) the class handlers alone: the engine's generic uops
 * already know the instruction has no uop, and building a stand-alone vCPU to find that out
 * again costs more than the instruction. */
/* How much of a struct emu_cpu an instruction can change: all of it, except that without
 * AVX (XCR0 limited to x87 and SSE) nothing past the legacy XSAVE area and its header is ever
 * used, and copying the 4 KiB image twice per instruction was most of the generic path. */
static size_t cpu_copy_size(const struct emu_env *env)
{
	if (env->features->xcr0_mask <= 3)
		return offsetof(struct emu_cpu, xsave) + XSAVE_LEGACY_SIZE + XSAVE_HDR_SIZE;
	return sizeof(struct emu_cpu);
}

/* Starts (ctx) on (work), a copy of (cpu): a fault or an unsupported case leaves the caller's
 * state untouched. */
static void ctx_begin(struct emu_ctx *ctx, struct emu_cpu *work, const struct emu_cpu *cpu,
		      const struct emu_env *env, struct emu_result *res)
{
	memset(res, 0, sizeof(*res));
	memcpy(work, cpu, cpu_copy_size(env));
	work->dirty = 0;
	memset(&ctx->insn, 0, sizeof(ctx->insn));
	ctx->cpu = work;
	ctx->env = env;
	ctx->res = res;
	ctx->nw = ctx->wused = 0;
	ctx->nad = 0;
	ctx->rip_written = false;
	ctx->maxphy = env->features->maxphyaddr ? env->features->maxphyaddr : 52;
}

/* How many times in a row the bytes fetched at one RIP may disagree with KVM's before the
 * instruction is reported unsupported (step()). */
#define EMU_REFETCH_RETRIES 16

static void step(struct emu_cpu *cpu_in, const struct emu_env *env, const uint8_t *bytes,
		 unsigned int len, struct emu_result *res, bool classes_only)
{
	static _Thread_local struct emu_ctx ctx_storage;
	static _Thread_local struct emu_cpu work;
	struct emu_ctx *ctx = &ctx_storage;
	ZydisDecoder dec;
	ZydisMachineMode mode;
	ZydisStackWidth sw;
	emu_handler_fn fn;
	struct emu_fault cut = {0};
	bool truncated = false, given = len != 0;
	ZyanStatus zs;
	int ret;

	ctx_begin(ctx, &work, cpu_in, env, res);
	res->mnemonic = "?";
	res->mnemonic_id = 0;

	if (!given) {
		ret = fetch(ctx, res->insn, &len, &cut, &truncated);
		if (ret)
			goto out;
	} else {
		if (len > sizeof(res->insn))
			len = sizeof(res->insn);
		memcpy(res->insn, bytes, len);
	}
	res->insn_len = len;
	if (!classes_only && step_uop(cpu_in, env, res->insn, len, res)) {
		if (res->status == EMU_DONE)
			emu_commit(ctx); /* the accessed bits of the fetch's walks */
		return;
	}

	decoder_mode(&work, &mode, &sw);
	ZydisDecoderInit(&dec, mode, sw);
	zs = ZydisDecoderDecodeFull(&dec, res->insn, len, &ctx->insn, ctx->ops);
	if (zs == ZYDIS_STATUS_NO_MORE_DATA && given) {
		/* The caller's bytes stop short. KVM hands back only the bytes on the first page
		 * of an instruction that crosses into the next one (measured on KVM-PVM with a
		 * vmovdqu at 0x...ffb: 5 of its 8 bytes): fetch the rest through the page tables
		 * as the CPU would. */
		static _Thread_local uint64_t changed_rip;
		static _Thread_local unsigned int changed_count;
		uint8_t given_bytes[sizeof(res->insn)];
		unsigned int given_len = len;

		memcpy(given_bytes, res->insn, given_len);
		ret = fetch(ctx, res->insn, &len, &cut, &truncated);
		if (ret)
			goto out;
		/* The whole instruction is fetched again, and it must be the one KVM failed on:
		 * if the bytes KVM gave are not where it begins now (another vCPU rewrote or
		 * remapped the code meanwhile), what we fetched is an instruction KVM never saw,
		 * and running it could do what no CPU would have done. Report it done with
		 * nothing changed instead: the guest runs the instruction at RIP again, from its
		 * current bytes, natively or through here with bytes that agree. Not unsupported:
		 * that raises #UD at CPL3 and stops the VM at CPL0, for a race the guest is
		 * entitled to (text patching, a JIT). Only bytes that keep disagreeing at the
		 * same RIP, which no finite rewrite explains, are reported as unsupported. */
		if (len < given_len || memcmp(res->insn, given_bytes, given_len)) {
			memcpy(res->insn, given_bytes, given_len);
			res->insn_len = given_len;
			if (changed_rip != work.rip || changed_count == 0) {
				changed_rip = work.rip;
				changed_count = 0;
			}
			if (++changed_count < EMU_REFETCH_RETRIES) {
				res->status = EMU_DONE;
				return;
			}
			changed_count = 0;
			ret = emu_unsupported(ctx, "the bytes at 0x%llx keep differing from KVM's",
					      (unsigned long long)work.rip);
			goto out;
		}
		changed_count = 0;
		res->insn_len = len;
		if (!classes_only && step_uop(cpu_in, env, res->insn, len, res)) {
			if (res->status == EMU_DONE)
				emu_commit(ctx);
			return;
		}
		zs = ZydisDecoderDecodeFull(&dec, res->insn, len, &ctx->insn, ctx->ops);
	}
	if (!ZYAN_SUCCESS(zs)) {
		/* An instruction that runs into a page we could not fetch: the CPU raises that
		 * page's fault (SDM Vol. 3A 6.15, #PF on instruction fetch). */
		if (truncated && zs == ZYDIS_STATUS_NO_MORE_DATA) {
			ret = emu_raise(ctx, cut.vector, cut.has_error_code, cut.error_code);
			ctx->res->fault.cr2 = cut.cr2;
			goto out;
		}
		/* Bytes the CPU itself could not decode raise #UD; but KVM handed them to us as
		 * something it could not do, so more likely Zydis and the CPU disagree (or the
		 * mode is wrong): report, do not guess. */
		ret = emu_unsupported(ctx, "the bytes do not decode as an x86 instruction");
		goto out;
	}
	res->insn_len = ctx->insn.length;
	res->mnemonic = ZydisMnemonicGetString(ctx->insn.mnemonic);
	res->mnemonic_id = ctx->insn.mnemonic;
	ctx->next_rip = work.rip + ctx->insn.length;
	if (!emu_64bit(&work))
		ctx->next_rip &= work.seg[EMU_CS].db ? 0xffffffffull : 0xffffull;

	fn = handler_for(ctx->insn.mnemonic);
	if (!fn) {
		ret = emu_unsupported(ctx, "mvm does not emulate %s", res->mnemonic);
		goto out;
	}
	ret = fn(ctx);
out:
	switch (ret) {
	case EMU_OK:
		if (!ctx->rip_written)
			work.rip = ctx->next_rip;
		/* RF is cleared after an instruction completes (SDM Vol. 3A 17.3.1.1). */
		work.rflags &= ~RF_RF;
		work.dirty |= EMU_DIRTY_GPRS;
		ret = emu_commit(ctx);
		if (ret == EMU_EXC) {
			res->status = EMU_FAULT;
			break;
		}
		if (ret == EMU_UNSUP) {
			res->status = EMU_UNSUPPORTED;
			break;
		}
		/* EMU_RETRY: done with nothing changed, so the guest runs it again. */
		if (ret == EMU_OK)
			memcpy(cpu_in, &work, cpu_copy_size(env));
		else
			res->db_hits = 0;
		res->status = EMU_DONE;
		break;
	case EMU_EXC:
		res->status = EMU_FAULT;
		break;
	default:
		res->status = EMU_UNSUPPORTED;
		break;
	}
}

void emu_step(struct emu_cpu *cpu, const struct emu_env *env, const uint8_t *bytes,
	      unsigned int len, struct emu_result *res)
{
	step(cpu, env, bytes, len, res, false);
}

void emu_step_classes(struct emu_cpu *cpu, const struct emu_env *env, const uint8_t *bytes,
		      unsigned int len, struct emu_result *res)
{
	step(cpu, env, bytes, len, res, true);
}

int emu_deliver_event(struct emu_cpu *cpu, const struct emu_env *env, uint8_t vector,
		      bool has_error, uint32_t error, struct emu_result *res)
{
	static _Thread_local struct emu_ctx ctx_storage;
	static _Thread_local struct emu_cpu work;
	struct emu_ctx *ctx = &ctx_storage;
	int ret;

	ctx_begin(ctx, &work, cpu, env, res);
	do {
		ret = emu_deliver_interrupt(ctx, vector, false, has_error, error);
		if (ret == EMU_OK)
			ret = emu_commit(ctx);
		if (ret == EMU_RETRY) { /* the IDT or stack was remapped meanwhile: again */
			memcpy(&work, cpu, cpu_copy_size(env));
			ctx->rip_written = false;
			memset(&res->fault, 0, sizeof(res->fault));
		}
	} while (ret == EMU_RETRY);
	if (ret == EMU_OK) {
		memcpy(cpu, &work, cpu_copy_size(env));
		res->status = EMU_DONE;
	} else {
		res->status = ret == EMU_EXC ? EMU_FAULT : EMU_UNSUPPORTED;
	}
	return ret;
}

void emu_disassemble(const struct emu_cpu *cpu, const struct emu_result *res, char *buf,
		     size_t size)
{
	ZydisDecoder dec;
	ZydisFormatter fmt;
	ZydisDecodedInstruction insn;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisMachineMode mode;
	ZydisStackWidth sw;

	snprintf(buf, size, "??");
	if (!res->insn_len)
		return;
	decoder_mode(cpu, &mode, &sw);
	ZydisDecoderInit(&dec, mode, sw);
	ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL);
	if (ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, res->insn, res->insn_len, &insn, ops)))
		ZydisFormatterFormatInstruction(&fmt, &insn, ops, insn.operand_count_visible, buf,
						size, cpu->rip, NULL);
}
