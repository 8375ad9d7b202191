/* test_emu_sse2.c: the SSE/SSE2 computation instructions of insn_sse2.c. Every instruction, in
 * its register and memory forms, runs in the emulator and on the host CPU with the same bytes,
 * registers, memory and MXCSR (rounding modes, DAZ, FTZ, flags already set) and inputs chosen to
 * hit the edges (saturation, signed/unsigned extremes, shift counts at and past the element
 * width, sign bits for the masks, NaNs quiet and signalling, infinities, denormals, integer
 * range limits); registers, RFLAGS, memory and MXCSR must agree. Then what the host cannot
 * show: #GP(0) for misaligned m128 operands (and none for the scalar/m64 forms), #UD/#NM
 * availability, page faults, YMM upper halves kept, XMM8-15, MMX and SSE4 forms reported, the
 * string movsd untouched, and known answers that do not depend on the host. */
#include "emu_native.h"

/* --- the host comparison --- */

enum gen { G_INT, G_F32, G_F64 };

#define F_MEM 1 /* addresses memory through [rsi] */
#define F_A16 2 /* ... a 16-byte operand that must be aligned */
#define F_IMM 4 /* the last byte is an imm8: tried with many values */
#define F_MX  8 /* floating point: tried under several MXCSR settings */

struct sse2_case {
	const char *name;
	uint8_t insn[10];
	uint8_t len;
	uint8_t gen;
	uint8_t flags;
};

#define C(nm, g, fl, ...)                                                                          \
	{                                                                                          \
		nm, {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__}), g, fl                         \
	}
/* op xmm0, xmm1 and op xmm2, [rsi] (m128, aligned) */
#define RM(nm, g, fl, ...)                                                                         \
	C(nm " xmm0, xmm1", g, fl, __VA_ARGS__, 0xc1),                                             \
		C(nm " xmm2, [rsi]", g, (fl) | F_MEM | F_A16, __VA_ARGS__, 0x16)
/* the same with an imm8 */
#define RMI(nm, g, fl, ...)                                                                        \
	C(nm " xmm0, xmm1, imm8", g, (fl) | F_IMM, __VA_ARGS__, 0xc1, 0),                          \
		C(nm " xmm2, [rsi], imm8", g, (fl) | F_IMM | F_MEM | F_A16, __VA_ARGS__, 0x16, 0)
/* scalar: op xmm0, xmm1 and op xmm2, [rsi] (m32/m64, any alignment) */
#define RS(nm, g, fl, ...)                                                                         \
	C(nm " xmm0, xmm1", g, fl, __VA_ARGS__, 0xc1),                                             \
		C(nm " xmm2, [rsi]", g, (fl) | F_MEM, __VA_ARGS__, 0x16)

/* clang-format off */
static const struct sse2_case cases[] = {
	/* compare, mask */
	RM("pcmpeqb", G_INT, 0, 0x66, 0x0f, 0x74),
	RM("pcmpeqw", G_INT, 0, 0x66, 0x0f, 0x75),
	RM("pcmpeqd", G_INT, 0, 0x66, 0x0f, 0x76),
	RM("pcmpgtb", G_INT, 0, 0x66, 0x0f, 0x64),
	RM("pcmpgtw", G_INT, 0, 0x66, 0x0f, 0x65),
	RM("pcmpgtd", G_INT, 0, 0x66, 0x0f, 0x66),
	C("pcmpeqb xmm3, xmm3", G_INT, 0, 0x66, 0x0f, 0x74, 0xdb),
	C("pmovmskb eax, xmm1", G_INT, 0, 0x66, 0x0f, 0xd7, 0xc1),
	C("pmovmskb rdx, xmm3 (REX.W)", G_INT, 0, 0x66, 0x48, 0x0f, 0xd7, 0xd3),
	C("pmovmskb r9d, xmm0", G_INT, 0, 0x66, 0x44, 0x0f, 0xd7, 0xc8),
	C("movmskps ecx, xmm2", G_INT, 0, 0x0f, 0x50, 0xca),
	C("movmskps rax, xmm1 (REX.W)", G_INT, 0, 0x48, 0x0f, 0x50, 0xc1),
	C("movmskpd ebx, xmm3", G_INT, 0, 0x66, 0x0f, 0x50, 0xdb),
	/* logic */
	RM("por", G_INT, 0, 0x66, 0x0f, 0xeb),
	RM("pand", G_INT, 0, 0x66, 0x0f, 0xdb),
	RM("pandn", G_INT, 0, 0x66, 0x0f, 0xdf),
	RM("orps", G_INT, 0, 0x0f, 0x56),
	RM("andps", G_INT, 0, 0x0f, 0x54),
	RM("andnps", G_INT, 0, 0x0f, 0x55),
	RM("orpd", G_INT, 0, 0x66, 0x0f, 0x56),
	RM("andpd", G_INT, 0, 0x66, 0x0f, 0x54),
	RM("andnpd", G_INT, 0, 0x66, 0x0f, 0x55),
	RM("xorpd", G_INT, 0, 0x66, 0x0f, 0x57),
	/* integer arithmetic */
	RM("paddb", G_INT, 0, 0x66, 0x0f, 0xfc),
	RM("paddw", G_INT, 0, 0x66, 0x0f, 0xfd),
	RM("paddd", G_INT, 0, 0x66, 0x0f, 0xfe),
	RM("paddq", G_INT, 0, 0x66, 0x0f, 0xd4),
	RM("psubb", G_INT, 0, 0x66, 0x0f, 0xf8),
	RM("psubw", G_INT, 0, 0x66, 0x0f, 0xf9),
	RM("psubd", G_INT, 0, 0x66, 0x0f, 0xfa),
	RM("psubq", G_INT, 0, 0x66, 0x0f, 0xfb),
	RM("paddusb", G_INT, 0, 0x66, 0x0f, 0xdc),
	RM("paddusw", G_INT, 0, 0x66, 0x0f, 0xdd),
	RM("psubusb", G_INT, 0, 0x66, 0x0f, 0xd8),
	RM("psubusw", G_INT, 0, 0x66, 0x0f, 0xd9),
	RM("paddsb", G_INT, 0, 0x66, 0x0f, 0xec),
	RM("paddsw", G_INT, 0, 0x66, 0x0f, 0xed),
	RM("psubsb", G_INT, 0, 0x66, 0x0f, 0xe8),
	RM("psubsw", G_INT, 0, 0x66, 0x0f, 0xe9),
	RM("pminub", G_INT, 0, 0x66, 0x0f, 0xda),
	RM("pmaxub", G_INT, 0, 0x66, 0x0f, 0xde),
	RM("pminsw", G_INT, 0, 0x66, 0x0f, 0xea),
	RM("pmaxsw", G_INT, 0, 0x66, 0x0f, 0xee),
	RM("pavgb", G_INT, 0, 0x66, 0x0f, 0xe0),
	RM("pavgw", G_INT, 0, 0x66, 0x0f, 0xe3),
	RM("psadbw", G_INT, 0, 0x66, 0x0f, 0xf6),
	RM("pmullw", G_INT, 0, 0x66, 0x0f, 0xd5),
	RM("pmulhw", G_INT, 0, 0x66, 0x0f, 0xe5),
	RM("pmulhuw", G_INT, 0, 0x66, 0x0f, 0xe4),
	RM("pmuludq", G_INT, 0, 0x66, 0x0f, 0xf4),
	RM("pmaddwd", G_INT, 0, 0x66, 0x0f, 0xf5),
	/* shuffles, unpacks, packs */
	RMI("pshufd", G_INT, 0, 0x66, 0x0f, 0x70),
	RMI("pshuflw", G_INT, 0, 0xf2, 0x0f, 0x70),
	RMI("pshufhw", G_INT, 0, 0xf3, 0x0f, 0x70),
	C("pshufd xmm1, xmm1, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x70, 0xc9, 0),
	RM("punpcklbw", G_INT, 0, 0x66, 0x0f, 0x60),
	RM("punpcklwd", G_INT, 0, 0x66, 0x0f, 0x61),
	RM("punpckldq", G_INT, 0, 0x66, 0x0f, 0x62),
	RM("punpcklqdq", G_INT, 0, 0x66, 0x0f, 0x6c),
	RM("punpckhbw", G_INT, 0, 0x66, 0x0f, 0x68),
	RM("punpckhwd", G_INT, 0, 0x66, 0x0f, 0x69),
	RM("punpckhdq", G_INT, 0, 0x66, 0x0f, 0x6a),
	RM("punpckhqdq", G_INT, 0, 0x66, 0x0f, 0x6d),
	C("punpcklbw xmm0, xmm0", G_INT, 0, 0x66, 0x0f, 0x60, 0xc0),
	RM("packuswb", G_INT, 0, 0x66, 0x0f, 0x67),
	RM("packsswb", G_INT, 0, 0x66, 0x0f, 0x63),
	RM("packssdw", G_INT, 0, 0x66, 0x0f, 0x6b),
	RMI("shufps", G_INT, 0, 0x0f, 0xc6),
	RMI("shufpd", G_INT, 0, 0x66, 0x0f, 0xc6),
	RM("unpcklps", G_INT, 0, 0x0f, 0x14),
	RM("unpckhps", G_INT, 0, 0x0f, 0x15),
	RM("unpcklpd", G_INT, 0, 0x66, 0x0f, 0x14),
	RM("unpckhpd", G_INT, 0, 0x66, 0x0f, 0x15),
	/* shifts: by xmm/m128 count, by imm8 */
	RM("psllw", G_INT, 0, 0x66, 0x0f, 0xf1),
	RM("pslld", G_INT, 0, 0x66, 0x0f, 0xf2),
	RM("psllq", G_INT, 0, 0x66, 0x0f, 0xf3),
	RM("psrlw", G_INT, 0, 0x66, 0x0f, 0xd1),
	RM("psrld", G_INT, 0, 0x66, 0x0f, 0xd2),
	RM("psrlq", G_INT, 0, 0x66, 0x0f, 0xd3),
	RM("psraw", G_INT, 0, 0x66, 0x0f, 0xe1),
	RM("psrad", G_INT, 0, 0x66, 0x0f, 0xe2),
	C("psllw xmm0, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x71, 0xf0, 0),
	C("pslld xmm3, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x72, 0xf3, 0),
	C("psllq xmm1, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x73, 0xf1, 0),
	C("psrlw xmm2, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x71, 0xd2, 0),
	C("psrld xmm0, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x72, 0xd0, 0),
	C("psrlq xmm3, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x73, 0xd3, 0),
	C("psraw xmm1, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x71, 0xe1, 0),
	C("psrad xmm2, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x72, 0xe2, 0),
	C("pslldq xmm0, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x73, 0xf8, 0),
	C("psrldq xmm3, imm8", G_INT, F_IMM, 0x66, 0x0f, 0x73, 0xdb, 0),
	/* moves */
	C("movss xmm0, xmm1", G_INT, 0, 0xf3, 0x0f, 0x10, 0xc1),
	C("movss xmm2, [rsi]", G_INT, F_MEM, 0xf3, 0x0f, 0x10, 0x16),
	C("movss [rsi], xmm3", G_INT, F_MEM, 0xf3, 0x0f, 0x11, 0x1e),
	C("movss xmm3, xmm2 (0f 11)", G_INT, 0, 0xf3, 0x0f, 0x11, 0xd3),
	C("movsd xmm0, xmm1", G_INT, 0, 0xf2, 0x0f, 0x10, 0xc1),
	C("movsd xmm2, [rsi]", G_INT, F_MEM, 0xf2, 0x0f, 0x10, 0x16),
	C("movsd [rsi], xmm3", G_INT, F_MEM, 0xf2, 0x0f, 0x11, 0x1e),
	C("movsd xmm3, xmm2 (0f 11)", G_INT, 0, 0xf2, 0x0f, 0x11, 0xd3),
	C("movlps xmm0, [rsi]", G_INT, F_MEM, 0x0f, 0x12, 0x06),
	C("movlps [rsi], xmm1", G_INT, F_MEM, 0x0f, 0x13, 0x0e),
	C("movhps xmm2, [rsi]", G_INT, F_MEM, 0x0f, 0x16, 0x16),
	C("movhps [rsi], xmm3", G_INT, F_MEM, 0x0f, 0x17, 0x1e),
	C("movlpd xmm1, [rsi]", G_INT, F_MEM, 0x66, 0x0f, 0x12, 0x0e),
	C("movlpd [rsi], xmm2", G_INT, F_MEM, 0x66, 0x0f, 0x13, 0x16),
	C("movhpd xmm3, [rsi]", G_INT, F_MEM, 0x66, 0x0f, 0x16, 0x1e),
	C("movhpd [rsi], xmm0", G_INT, F_MEM, 0x66, 0x0f, 0x17, 0x06),
	C("movhlps xmm0, xmm1", G_INT, 0, 0x0f, 0x12, 0xc1),
	C("movlhps xmm2, xmm3", G_INT, 0, 0x0f, 0x16, 0xd3),
	C("pextrw eax, xmm1, imm8", G_INT, F_IMM, 0x66, 0x0f, 0xc5, 0xc1, 0),
	C("pextrw rdx, xmm3, imm8 (REX.W)", G_INT, F_IMM, 0x66, 0x48, 0x0f, 0xc5, 0xd3, 0),
	C("pinsrw xmm0, ecx, imm8", G_INT, F_IMM, 0x66, 0x0f, 0xc4, 0xc1, 0),
	C("pinsrw xmm2, [rsi], imm8", G_INT, F_IMM | F_MEM, 0x66, 0x0f, 0xc4, 0x16, 0),
	/* floating point: scalar and packed arithmetic */
	RS("addss", G_F32, F_MX, 0xf3, 0x0f, 0x58),
	RS("addsd", G_F64, F_MX, 0xf2, 0x0f, 0x58),
	RS("subss", G_F32, F_MX, 0xf3, 0x0f, 0x5c),
	RS("subsd", G_F64, F_MX, 0xf2, 0x0f, 0x5c),
	RS("mulss", G_F32, F_MX, 0xf3, 0x0f, 0x59),
	RS("mulsd", G_F64, F_MX, 0xf2, 0x0f, 0x59),
	RS("divss", G_F32, F_MX, 0xf3, 0x0f, 0x5e),
	RS("divsd", G_F64, F_MX, 0xf2, 0x0f, 0x5e),
	RS("sqrtss", G_F32, F_MX, 0xf3, 0x0f, 0x51),
	RS("sqrtsd", G_F64, F_MX, 0xf2, 0x0f, 0x51),
	RS("minss", G_F32, F_MX, 0xf3, 0x0f, 0x5d),
	RS("minsd", G_F64, F_MX, 0xf2, 0x0f, 0x5d),
	RS("maxss", G_F32, F_MX, 0xf3, 0x0f, 0x5f),
	RS("maxsd", G_F64, F_MX, 0xf2, 0x0f, 0x5f),
	C("addsd xmm1, xmm1", G_F64, F_MX, 0xf2, 0x0f, 0x58, 0xc9),
	RM("addps", G_F32, F_MX, 0x0f, 0x58),
	RM("addpd", G_F64, F_MX, 0x66, 0x0f, 0x58),
	RM("subps", G_F32, F_MX, 0x0f, 0x5c),
	RM("subpd", G_F64, F_MX, 0x66, 0x0f, 0x5c),
	RM("mulps", G_F32, F_MX, 0x0f, 0x59),
	RM("mulpd", G_F64, F_MX, 0x66, 0x0f, 0x59),
	RM("divps", G_F32, F_MX, 0x0f, 0x5e),
	RM("divpd", G_F64, F_MX, 0x66, 0x0f, 0x5e),
	RM("sqrtps", G_F32, F_MX, 0x0f, 0x51),
	RM("sqrtpd", G_F64, F_MX, 0x66, 0x0f, 0x51),
	RM("minps", G_F32, F_MX, 0x0f, 0x5d),
	RM("minpd", G_F64, F_MX, 0x66, 0x0f, 0x5d),
	RM("maxps", G_F32, F_MX, 0x0f, 0x5f),
	RM("maxpd", G_F64, F_MX, 0x66, 0x0f, 0x5f),
	/* comparisons */
	C("cmpss xmm0, xmm1, imm8", G_F32, F_MX | F_IMM, 0xf3, 0x0f, 0xc2, 0xc1, 0),
	C("cmpss xmm2, [rsi], imm8", G_F32, F_MX | F_IMM | F_MEM, 0xf3, 0x0f, 0xc2, 0x16, 0),
	C("cmpsd xmm0, xmm1, imm8", G_F64, F_MX | F_IMM, 0xf2, 0x0f, 0xc2, 0xc1, 0),
	C("cmpsd xmm2, [rsi], imm8", G_F64, F_MX | F_IMM | F_MEM, 0xf2, 0x0f, 0xc2, 0x16, 0),
	RMI("cmpps", G_F32, F_MX, 0x0f, 0xc2),
	RMI("cmppd", G_F64, F_MX, 0x66, 0x0f, 0xc2),
	RS("comiss", G_F32, F_MX, 0x0f, 0x2f),
	RS("comisd", G_F64, F_MX, 0x66, 0x0f, 0x2f),
	RS("ucomiss", G_F32, F_MX, 0x0f, 0x2e),
	RS("ucomisd", G_F64, F_MX, 0x66, 0x0f, 0x2e),
	/* conversions */
	C("cvtsi2sd xmm0, eax", G_F64, F_MX, 0xf2, 0x0f, 0x2a, 0xc0),
	C("cvtsi2sd xmm1, rcx", G_F64, F_MX, 0xf2, 0x48, 0x0f, 0x2a, 0xc9),
	C("cvtsi2sd xmm2, dword [rsi]", G_F64, F_MX | F_MEM, 0xf2, 0x0f, 0x2a, 0x16),
	C("cvtsi2sd xmm3, qword [rsi]", G_F64, F_MX | F_MEM, 0xf2, 0x48, 0x0f, 0x2a, 0x1e),
	C("cvtsi2ss xmm0, edx", G_F32, F_MX, 0xf3, 0x0f, 0x2a, 0xc2),
	C("cvtsi2ss xmm1, rbx", G_F32, F_MX, 0xf3, 0x48, 0x0f, 0x2a, 0xcb),
	C("cvtsi2ss xmm2, dword [rsi]", G_F32, F_MX | F_MEM, 0xf3, 0x0f, 0x2a, 0x16),
	C("cvtsi2ss xmm3, qword [rsi]", G_F32, F_MX | F_MEM, 0xf3, 0x48, 0x0f, 0x2a, 0x1e),
	C("cvttsd2si eax, xmm1", G_F64, F_MX, 0xf2, 0x0f, 0x2c, 0xc1),
	C("cvttsd2si rcx, xmm2", G_F64, F_MX, 0xf2, 0x48, 0x0f, 0x2c, 0xca),
	C("cvttsd2si edx, [rsi]", G_F64, F_MX | F_MEM, 0xf2, 0x0f, 0x2c, 0x16),
	C("cvtsd2si eax, xmm1", G_F64, F_MX, 0xf2, 0x0f, 0x2d, 0xc1),
	C("cvtsd2si rbx, [rsi]", G_F64, F_MX | F_MEM, 0xf2, 0x48, 0x0f, 0x2d, 0x1e),
	C("cvttss2si eax, xmm3", G_F32, F_MX, 0xf3, 0x0f, 0x2c, 0xc3),
	C("cvttss2si rcx, [rsi]", G_F32, F_MX | F_MEM, 0xf3, 0x48, 0x0f, 0x2c, 0x0e),
	C("cvtss2si edx, xmm0", G_F32, F_MX, 0xf3, 0x0f, 0x2d, 0xd0),
	C("cvtss2si rax, [rsi]", G_F32, F_MX | F_MEM, 0xf3, 0x48, 0x0f, 0x2d, 0x06),
	RS("cvtss2sd", G_F32, F_MX, 0xf3, 0x0f, 0x5a),
	RS("cvtsd2ss", G_F64, F_MX, 0xf2, 0x0f, 0x5a),
	RS("cvtps2pd", G_F32, F_MX, 0x0f, 0x5a), /* m64 */
	RM("cvtpd2ps", G_F64, F_MX, 0x66, 0x0f, 0x5a),
	RM("cvtdq2ps", G_INT, F_MX, 0x0f, 0x5b),
	RS("cvtdq2pd", G_INT, F_MX, 0xf3, 0x0f, 0xe6), /* m64 */
	RM("cvtps2dq", G_F32, F_MX, 0x66, 0x0f, 0x5b),
	RM("cvttps2dq", G_F32, F_MX, 0xf3, 0x0f, 0x5b),
	RM("cvtpd2dq", G_F64, F_MX, 0xf2, 0x0f, 0xe6),
	RM("cvttpd2dq", G_F64, F_MX, 0x66, 0x0f, 0xe6),
};
/* clang-format on */
#define NCASES (sizeof(cases) / sizeof(cases[0]))

struct run {
	struct native_regs emu, nat;
	uint32_t emu_mx, nat_mx;
	_Alignas(64) uint8_t emu_mem[BUF_SIZE];
	_Alignas(64) uint8_t nat_mem[BUF_SIZE];
	struct emu_result res;
	bool native_ok;
};

static uint32_t host_mx[3]; /* MXCSR to load, as stored after the instruction, the host's */

static uint32_t guest_mxcsr(const struct emu_cpu *c)
{
	uint32_t v;

	memcpy(&v, c->xsave + 24, 4);
	return v;
}

/* Runs (insn) from (in), MXCSR (mxcsr) and buffer (mem) in the emulator and natively; RSI holds
 * an offset into the buffer. Natively the bytes go between ldmxcsr [r15] and stmxcsr [r15+4];
 * ldmxcsr [r15+8] (the host's own), so the instructions under test must leave R15 alone. */
static void run_both(struct fx *fx, const uint8_t *insn, size_t len, const struct native_regs *in,
		     uint32_t mxcsr, const uint8_t *mem, struct run *r)
{
	static const uint8_t ld[] = {0x41, 0x0f, 0xae, 0x17};		 /* ldmxcsr [r15] */
	static const uint8_t st[] = {0x41, 0x0f, 0xae, 0x5f, 0x04};	 /* stmxcsr [r15+4] */
	static const uint8_t restore[] = {0x41, 0x0f, 0xae, 0x57, 0x08}; /* ldmxcsr [r15+8] */
	static _Alignas(64) uint8_t nbuf[BUF_SIZE];
	uint8_t code[64];
	size_t n = 0;
	struct emu_cpu c;

	fx_init_cpu(&c);
	for (int i = 0; i < 16; i++)
		if (i != EMU_RSP)
			c.gpr[i] = in->gpr[i];
	c.gpr[EMU_RSI] = GBUF + in->gpr[EMU_RSI];
	c.rflags = in->rflags;
	for (int i = 0; i < 4; i++)
		fx_set_xmm(&c, i, in->xmm[i]);
	memcpy(c.xsave + 24, &mxcsr, 4);
	memcpy(fx->ram + GBUF, mem, BUF_SIZE);
	fx_step(fx, &c, insn, (unsigned int)len, &r->res);
	memcpy(r->emu.gpr, c.gpr, sizeof(c.gpr));
	r->emu.gpr[EMU_RSI] = c.gpr[EMU_RSI] - GBUF;
	r->emu.gpr[EMU_RSP] = 0;
	r->emu.rflags = c.rflags;
	for (int i = 0; i < 4; i++)
		fx_get_xmm(&c, i, r->emu.xmm[i]);
	r->emu_mx = guest_mxcsr(&c);
	memcpy(r->emu_mem, fx->ram + GBUF, BUF_SIZE);

	memcpy(code + n, ld, sizeof(ld));
	n += sizeof(ld);
	memcpy(code + n, insn, len);
	n += len;
	memcpy(code + n, st, sizeof(st));
	n += sizeof(st);
	memcpy(code + n, restore, sizeof(restore));
	n += sizeof(restore);
	host_mx[0] = mxcsr;
	host_mx[1] = 0;
	__asm__ __volatile__("stmxcsr %0" : "=m"(host_mx[2]));
	r->nat = *in;
	r->nat.gpr[15] = (uint64_t)(uintptr_t)host_mx;
	r->nat.gpr[EMU_RSI] = (uint64_t)(uintptr_t)nbuf + in->gpr[EMU_RSI];
	memcpy(nbuf, mem, BUF_SIZE);
	r->native_ok = native_run(code, n, &r->nat);
	if (!r->native_ok) {
		native_skipped++;
		return;
	}
	native_compared++;
	r->nat.gpr[15] = in->gpr[15];
	r->nat.gpr[EMU_RSI] -= (uint64_t)(uintptr_t)nbuf;
	r->nat.gpr[EMU_RSP] = 0;
	r->nat_mx = host_mx[1];
	memcpy(r->nat_mem, nbuf, BUF_SIZE);
}

static bool run_same(const struct run *r)
{
	bool same = true;

	if (!r->native_ok)
		return true;
	for (int i = 0; i < 16; i++) {
		if (r->emu.gpr[i] != r->nat.gpr[i]) {
			fprintf(stderr, "  gpr %d: emulator 0x%llx host 0x%llx\n", i,
				(unsigned long long)r->emu.gpr[i],
				(unsigned long long)r->nat.gpr[i]);
			same = false;
		}
	}
	if ((r->emu.rflags ^ r->nat.rflags) & FX_ARITH) {
		fprintf(stderr, "  rflags: emulator 0x%llx host 0x%llx\n",
			(unsigned long long)r->emu.rflags, (unsigned long long)r->nat.rflags);
		same = false;
	}
	for (int i = 0; i < 4; i++) {
		if (memcmp(r->emu.xmm[i], r->nat.xmm[i], 16)) {
			uint64_t e[2], h[2];

			memcpy(e, r->emu.xmm[i], 16);
			memcpy(h, r->nat.xmm[i], 16);
			fprintf(stderr, "  xmm%d: emulator %016llx_%016llx host %016llx_%016llx\n",
				i, (unsigned long long)e[1], (unsigned long long)e[0],
				(unsigned long long)h[1], (unsigned long long)h[0]);
			same = false;
		}
	}
	if (r->emu_mx != r->nat_mx) {
		fprintf(stderr, "  mxcsr: emulator 0x%x host 0x%x\n", r->emu_mx, r->nat_mx);
		same = false;
	}
	if (memcmp(r->emu_mem, r->nat_mem, BUF_SIZE)) {
		fprintf(stderr, "  memory differs\n");
		same = false;
	}
	return same;
}

/* --- inputs --- */

static const uint32_t f32_special[] = {
	0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000,
	0xffc00000, 0x7fa00001, 0xff800001, 0x7fc12345, 0xffd5aa55, 0x00000001, 0x807fffff,
	0x00400000, 0x80000010, 0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff, 0x4f000000,
	0xcf000000, 0x4effffff, 0xceffffff, 0x3f000000, 0x3fc00000, 0x40200000, 0xbf000000,
	0xc0200000, 0x5f000000, 0xdf000000, 0x5effffff, 0x3eaaaaab, 0x4b7fffff, 0x4b800001,
	0x0c000000, 0x33800000, 0x00ffffff, 0x7effffff,
};

static const uint64_t f64_special[] = {
	0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull, 0xbff0000000000000ull,
	0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull, 0xfff8000000000000ull,
	0x7ff0000000000001ull, 0xfff4000000000000ull, 0x7ff8dead00000001ull, 0xfffc0000beef0000ull,
	0x0000000000000001ull, 0x800fffffffffffffull, 0x0008000000000000ull, 0x0010000000000000ull,
	0x8010000000000000ull, 0x7fefffffffffffffull, 0xffefffffffffffffull, 0x41e0000000000000ull,
	0xc1e0000000000000ull, 0x41dfffffffe00000ull, 0x41dfffffffc00000ull, 0xc1e0000000100000ull,
	0xc1e0000000200000ull, 0x43e0000000000000ull, 0xc3e0000000000000ull, 0x43dfffffffffffffull,
	0x3fe0000000000000ull, 0x3ff8000000000000ull, 0x4004000000000000ull, 0xc004000000000000ull,
	0xbfe0000000000000ull, 0x3fd5555555555555ull, 0x7fe1ccf385ebc8a0ull, 0x000730d67819e8d2ull,
	0x47efffffe0000000ull, 0x47efffffefffffffull, 0x47f0000000000000ull, 0x37a16c262777579cull,
	0x358dee7a4ad4b81full, 0x3690000000000000ull, 0x380fffffffffffffull, 0x4330000000000001ull,
	0x433fffffffffffffull, 0x001fffffffffffffull, 0x3ca0000000000000ull,
};

static const uint64_t int_special[] = {
	0,
	1,
	2,
	0x7f,
	0x80,
	0xff,
	0x7fff,
	0x8000,
	0xffff,
	0x7fffffff,
	0x80000000,
	0xffffffff,
	0x100000000ull,
	0x7fffffffffffffffull,
	0x8000000000000000ull,
	0xffffffffffffffffull,
	0x0020000000000001ull,
	0xffdfffffffffffffull,
	0x1000001,
	0xfeffffff,
	0x12345678,
	0xfffffffffffffff0ull,
};

static const uint64_t shift_counts[] = {0,    1,  2,  3,  7,  8,  9,   15,  16,	 17,
					31,   32, 33, 63, 64, 65, 127, 128, 255, 0x100000000ull,
					~0ull};

static uint64_t pick(const uint64_t *v, size_t n)
{
	return v[rng() % n];
}

#define PICK(a) pick(a, sizeof(a) / sizeof(a[0]))

/* A 16-byte integer pattern: random, or bytes/words/dwords from the edges, or a shift count. */
static void gen_int(uint8_t *v)
{
	static const uint8_t b_edge[] = {0x00, 0x01, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x40};
	static const uint16_t w_edge[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001,
					  0xffff, 0x00ff, 0xff00, 0x0080, 0xff7f};
	static const uint32_t d_edge[] = {0,	      1,	  0x7fffffff, 0x80000000,
					  0xffffffff, 0x0000ffff, 0xffff8000, 0x00008000,
					  0x00007fff, 0xffff7fff};
	uint64_t q;

	switch (rng() % 6) {
	case 0:
		for (int i = 0; i < 16; i++)
			v[i] = b_edge[rng() % sizeof(b_edge)];
		break;
	case 1:
		for (int i = 0; i < 8; i++)
			memcpy(v + 2 * i, &w_edge[rng() % 10], 2);
		break;
	case 2:
		for (int i = 0; i < 4; i++)
			memcpy(v + 4 * i, &d_edge[rng() % 10], 4);
		break;
	case 3:
		for (int i = 0; i < 2; i++) {
			q = PICK(int_special);
			memcpy(v + 8 * i, &q, 8);
		}
		break;
	case 4:
		q = PICK(shift_counts);
		memcpy(v, &q, 8);
		q = rng();
		memcpy(v + 8, &q, 8);
		break;
	default:
		for (int i = 0; i < 16; i++)
			v[i] = (uint8_t)rng();
		break;
	}
}

/* Floating-point elements: specials, or ordinary numbers of moderate magnitude. */
static void gen_fp(uint8_t *v, bool dbl)
{
	for (int i = 0; i < (dbl ? 2 : 4); i++) {
		uint64_t x;
		uint32_t s;

		if (dbl) {
			if (rng() % 2)
				x = PICK(f64_special);
			else
				x = (rng() & 0x800fffffffffffffull) |
				    ((uint64_t)(0x3f0 + rng() % 0x20) << 52);
			memcpy(v + 8 * i, &x, 8);
		} else {
			if (rng() % 2)
				s = f32_special[rng() % (sizeof(f32_special) / 4)];
			else
				s = ((uint32_t)rng() & 0x807fffffu) |
				    ((0x70u + rng() % 0x20) << 23);
			memcpy(v + 4 * i, &s, 4);
		}
	}
}

static void gen(uint8_t *v, enum gen g)
{
	if (g == G_INT)
		gen_int(v);
	else
		gen_fp(v, g == G_F64);
}

/* Inputs for one run: XMM0-3, the buffer (the operand at offset (off)), GPRs with integer
 * edges; sometimes elements copied across so that equal values meet. */
static void gen_inputs(struct native_regs *in, uint8_t *mem, enum gen g, uint64_t off)
{
	for (size_t j = 0; j < BUF_SIZE; j++)
		mem[j] = (uint8_t)rng();
	for (int r = 0; r < 16; r++)
		in->gpr[r] = rng() % 3 ? PICK(int_special) : rng();
	for (int x = 0; x < 4; x++)
		gen(in->xmm[x], g);
	gen(mem + off, g);
	if (g != G_INT && rng() % 2) /* an integer for cvtsi2sd/ss [rsi] */
		memcpy(mem + off, &int_special[rng() % (sizeof(int_special) / 8)], 8);
	if (rng() % 3 == 0) {
		for (int e = 0; e < 4; e++) {
			if (rng() % 2) {
				memcpy(in->xmm[1] + 4 * e, in->xmm[0] + 4 * e, 4);
				memcpy(in->xmm[3] + 4 * e, in->xmm[2] + 4 * e, 4);
				memcpy(mem + off + 4 * e, in->xmm[2] + 4 * e, 4);
			}
		}
	}
	in->gpr[EMU_RSI] = off;
}

/* --- the comparison over every case --- */

static const uint8_t imm_values[] = {0,	 1,  2,	 3,  7,	  8,   9,    15,   16,	 17,   31,  32,
				     33, 63, 64, 65, 127, 128, 0x1b, 0x4e, 0xb1, 0xe4, 0xff};
static const uint32_t mx_fp[] = {0x1f80, 0x3f80, 0x5f80, 0x7f80, 0x1fc0, 0x9f80, 0x9fc0, 0x1fbf};
static const uint32_t mx_int[] = {0x1f80, 0xffff};

static void test_native(struct fx *fx)
{
	static uint8_t mem[BUF_SIZE];
	static struct run r;

	for (size_t k = 0; k < NCASES; k++) {
		const struct sse2_case *cs = &cases[k];
		size_t nimm = cs->flags & F_IMM ? sizeof(imm_values) : 1;
		const uint32_t *mxs = cs->flags & F_MX ? mx_fp : mx_int;
		size_t nmx = cs->flags & F_MX ? sizeof(mx_fp) / 4 : sizeof(mx_int) / 4;
		int rounds = cs->flags & F_IMM ? 6 : cs->flags & F_MX ? 24 : 40;
		int reported = 0;

		for (size_t ii = 0; ii < nimm; ii++) {
			uint8_t insn[10];

			memcpy(insn, cs->insn, cs->len);
			if (cs->flags & F_IMM)
				insn[cs->len - 1] = imm_values[ii];
			for (size_t mi = 0; mi < nmx; mi++) {
				for (int round = 0; round < rounds; round++) {
					struct native_regs in = {0};
					uint64_t off = 256;
					int before = t_failures;

					/* Operands without an alignment rule go anywhere. */
					if ((cs->flags & F_MEM) && !(cs->flags & F_A16) &&
					    round % 2)
						off += 1 + rng() % 15;
					gen_inputs(&in, mem, (enum gen)cs->gen, off);
					in.rflags = 0x2 | (round & 1 ? FX_ARITH : 0);
					run_both(fx, insn, cs->len, &in, mxs[mi], mem, &r);
					CHECK_EQ(r.res.status, EMU_DONE);
					CHECK(run_same(&r));
					/* Non-arithmetic flags are not touched. */
					CHECK_EQ(r.emu.rflags & ~FX_ARITH, in.rflags & ~FX_ARITH);
					if (t_failures != before && reported++ < 3) {
						fprintf(stderr, "  %s (imm 0x%x, mxcsr 0x%x): %s\n",
							cs->name, insn[cs->len - 1], mxs[mi],
							r.res.why);
						print_insn(insn, cs->len);
						for (int x = 0; x < 4; x++) {
							uint64_t q[2];

							memcpy(q, in.xmm[x], 16);
							fprintf(stderr,
								"  in xmm%d %016llx_%016llx\n", x,
								(unsigned long long)q[1],
								(unsigned long long)q[0]);
						}
					}
				}
			}
		}
	}
}

/* --- what the host comparison cannot show --- */

static void set_pattern(struct emu_cpu *c)
{
	uint8_t v[16];

	for (int i = 0; i < 16; i++) {
		fx_fill(v, 16, (uint8_t)(0x10 * i + 1));
		fx_set_xmm(c, i, v);
		fx_fill(v, 16, (uint8_t)(0x10 * i + 0x81));
		fx_set_ymmh(c, i, v);
	}
}

/* m128 operands: #GP(0) when misaligned, before any page fault, with nothing changed; the
 * scalar and m64/m32/m16 forms go anywhere, across a page boundary too. */
static void test_alignment(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;

	for (size_t k = 0; k < NCASES; k++) {
		const struct sse2_case *cs = &cases[k];
		int before = t_failures;

		if (!(cs->flags & F_MEM))
			continue;
		if (cs->flags & F_A16) {
			static const uint64_t mis[] = {1, 4, 8, 15};

			for (size_t i = 0; i < 4; i++) {
				fx_init_cpu(&c);
				set_pattern(&c);
				c.gpr[EMU_RSI] = GBUF + 0x40 + mis[i];
				fx_snapshot(fx, &c, &save);
				fx_step(fx, &c, cs->insn, cs->len, &res);
				FX_CHECK_FAULT(&res, FX_GP, 0);
				FX_CHECK_UNCHANGED(fx, &c, &save);
			}
			/* Misaligned and not mapped: the alignment check comes first. */
			fx_init_cpu(&c);
			c.gpr[EMU_RSI] = FX_HOLE + 8;
			fx_step(fx, &c, cs->insn, cs->len, &res);
			FX_CHECK_FAULT(&res, FX_GP, 0);
			/* Aligned: done. */
			fx_init_cpu(&c);
			c.gpr[EMU_RSI] = GBUF + 0x40;
			fx_step(fx, &c, cs->insn, cs->len, &res);
			CHECK_EQ(res.status, EMU_DONE);
		} else {
			fx_init_cpu(&c);
			c.gpr[EMU_RSI] = GBUF + 0xffd; /* crosses into the next page */
			fx_step(fx, &c, cs->insn, cs->len, &res);
			CHECK_EQ(res.status, EMU_DONE);
		}
		/* Not mapped: #PF, with W for stores, nothing changed. */
		fx_init_cpu(&c);
		set_pattern(&c);
		c.gpr[EMU_RSI] = FX_HOLE;
		fx_snapshot(fx, &c, &save);
		fx_step(fx, &c, cs->insn, cs->len, &res);
		CHECK_EQ(res.status, EMU_FAULT);
		CHECK_EQ(res.fault.vector, FX_PFV);
		CHECK_EQ(res.fault.cr2, FX_HOLE);
		FX_CHECK_UNCHANGED(fx, &c, &save);
		if (t_failures != before)
			fprintf(stderr, "  %s\n", cs->name);
	}
	/* A store to a read-only page: #PF with P|W; a load from it works. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = FX_RO + 0x10;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x11, 0x1e); /* movsd [rsi], xmm3 */
	FX_CHECK_FAULT(&res, FX_PFV, 3);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x0f, 0x17, 0x1e); /* movhps [rsi], xmm3 */
	FX_CHECK_FAULT(&res, FX_PFV, 3);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xfc, 0x06); /* paddb xmm0, [rsi] */
	CHECK_EQ(res.status, EMU_DONE);
}

/* #UD without CPUID.SSE, with CR0.EM or without CR4.OSFXSR; #NM with CR0.TS; #UD before #NM
 * before #GP; nothing changed. */
static void test_availability(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;

	for (size_t k = 0; k < NCASES; k++) {
		const struct sse2_case *cs = &cases[k];
		int before = t_failures;

		for (int v = 0; v < 6; v++) {
			int want = v == 0 || v == 4 ? FX_NM : FX_UD;

			fx_init_cpu(&c);
			set_pattern(&c);
			c.gpr[EMU_RSI] = GBUF + 0x48; /* misaligned for the m128 forms */
			switch (v) {
			case 0:
				c.cr0 |= FX_CR0_TS;
				break;
			case 1:
				c.cr0 |= FX_CR0_EM;
				break;
			case 2:
				c.cr4 &= ~FX_CR4_OSFXSR;
				break;
			case 3:
				fx->feat.sse = false;
				break;
			case 4:
				c.cr0 |= FX_CR0_TS | FX_CR0_MP;
				break;
			default:
				c.cr0 |= FX_CR0_TS | FX_CR0_EM;
				break;
			}
			fx_snapshot(fx, &c, &save);
			fx_step(fx, &c, cs->insn, cs->len, &res);
			FX_CHECK_FAULT(&res, want, -1);
			FX_CHECK_UNCHANGED(fx, &c, &save);
			fx->feat.sse = true;
		}
		if (t_failures != before)
			fprintf(stderr, "  %s\n", cs->name);
	}
}

static uint64_t xmm_q(const struct emu_cpu *c, unsigned int i, unsigned int half)
{
	uint64_t q[2];

	fx_get_xmm(c, i, q);
	return q[half];
}

static void set_xmm_q(struct emu_cpu *c, unsigned int i, uint64_t lo, uint64_t hi)
{
	uint64_t q[2] = {lo, hi};

	fx_set_xmm(c, i, q);
}

static void set_mxcsr(struct emu_cpu *c, uint32_t v)
{
	memcpy(c->xsave + 24, &v, 4);
}

/* Known answers, independent of the host: each would fail on the plausible mistake. */
static void test_known(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;
	uint8_t x[16], y[16], hi[16];
	uint64_t bv;

	/* paddusb / psubusb saturate unsigned; paddsw / psubsb signed. */
	fx_init_cpu(&c);
	set_xmm_q(&c, 0, 0x00000000000010f0ull, 0x8000000000007000ull);
	set_xmm_q(&c, 1, 0x0000000000002020ull, 0x8000000000007000ull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xdc, 0xc1); /* paddusb xmm0, xmm1 */
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(xmm_q(&c, 0, 0), 0x00000000000030ffull);
	CHECK_EQ(xmm_q(&c, 0, 1), 0xff0000000000e000ull);
	set_xmm_q(&c, 0, 0x00000000000010f0ull, 0x8000000000007000ull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xd8, 0xc1); /* psubusb xmm0, xmm1 */
	CHECK_EQ(xmm_q(&c, 0, 0), 0x00000000000000d0ull);
	set_xmm_q(&c, 0, 0x00000000000010f0ull, 0x8000000000007000ull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xed, 0xc1); /* paddsw xmm0, xmm1 */
	CHECK_EQ(xmm_q(&c, 0, 1), 0x8000000000007fffull);
	set_xmm_q(&c, 0, 0x80, 0);
	set_xmm_q(&c, 1, 0x01, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xe8, 0xc1); /* psubsb xmm0, xmm1: -128 - 1 */
	CHECK_EQ(xmm_q(&c, 0, 0), 0x80);

	/* pcmpgtb is signed: 1 > -1. pminub is unsigned. */
	set_xmm_q(&c, 0, 0x01, 0);
	set_xmm_q(&c, 1, 0xff, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x64, 0xc1);
	CHECK_EQ(xmm_q(&c, 0, 0), 0xff);
	set_xmm_q(&c, 0, 0x01, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xda, 0xc1);
	CHECK_EQ(xmm_q(&c, 0, 0), 0x01);

	/* pmovmskb: the top bit of each byte, zero-extended over RAX. */
	c.gpr[EMU_RAX] = ~0ull;
	set_xmm_q(&c, 1, 0x000000000000807full, 0x80ff000000000000ull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xd7, 0xc1);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 0xc002);
	/* pmovmskb r8d, xmm15 and movmskpd: REX registers. */
	set_xmm_q(&c, 15, 0x8000000000000000ull, 0x0080000000000000ull);
	c.gpr[EMU_R8] = ~0ull;
	FX_STEP(fx, &c, &res, 0x66, 0x45, 0x0f, 0xd7, 0xc7);
	CHECK_EQ(c.gpr[EMU_R8], 0x4080);
	FX_STEP(fx, &c, &res, 0x66, 0x45, 0x0f, 0x50, 0xc7); /* movmskpd r8d, xmm15 */
	CHECK_EQ(c.gpr[EMU_R8], 1);

	/* Shift counts at or past the width: logical gives zero, arithmetic the sign. */
	set_xmm_q(&c, 0, 0x8000000012347fffull, 0xffff0001ffff8000ull);
	set_xmm_q(&c, 1, 16, 0x1234);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xe1, 0xc1); /* psraw xmm0, xmm1 */
	CHECK_EQ(xmm_q(&c, 0, 0), 0xffff000000000000ull);
	CHECK_EQ(xmm_q(&c, 0, 1), 0xffff0000ffffffffull);
	set_xmm_q(&c, 0, ~0ull, ~0ull);
	set_xmm_q(&c, 1, 0x100000000ull, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xd3, 0xc1); /* psrlq xmm0, xmm1: count 2^32 */
	CHECK_EQ(xmm_q(&c, 0, 0), 0);
	CHECK_EQ(xmm_q(&c, 0, 1), 0);
	set_xmm_q(&c, 0, ~0ull, ~0ull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x71, 0xf0, 16); /* psllw xmm0, 16 */
	CHECK_EQ(xmm_q(&c, 0, 0), 0);
	set_xmm_q(&c, 0, 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x73, 0xf8, 3); /* pslldq xmm0, 3 */
	CHECK_EQ(xmm_q(&c, 0, 0), 0x0403020100000000ull);
	CHECK_EQ(xmm_q(&c, 0, 1), 0x0c0b0a0908070605ull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x73, 0xd8, 17); /* psrldq xmm0, 17 */
	CHECK_EQ(xmm_q(&c, 0, 0) | xmm_q(&c, 0, 1), 0);

	/* psadbw: |0..7 - 7..0| sums to 32 per half; pmaddwd of -32768 * -32768 twice wraps. */
	set_xmm_q(&c, 0, 0x0706050403020100ull, 0x0000000000000000ull);
	set_xmm_q(&c, 1, 0x0001020304050607ull, 0xffffffffffffffffull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xf6, 0xc1);
	CHECK_EQ(xmm_q(&c, 0, 0), 32);
	CHECK_EQ(xmm_q(&c, 0, 1), 8 * 255);
	set_xmm_q(&c, 0, 0x8000800080008000ull, 0);
	set_xmm_q(&c, 1, 0x8000800000020003ull, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xf5, 0xc1);
	CHECK_EQ(xmm_q(&c, 0, 0), 0x80000000fffd8000ull);

	/* pshufd reverses with 0x1b; pinsrw/pextrw word 7. */
	set_xmm_q(&c, 1, 0x1111111100000000ull, 0x3333333322222222ull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x70, 0xc1, 0x1b);
	CHECK_EQ(xmm_q(&c, 0, 0), 0x2222222233333333ull);
	CHECK_EQ(xmm_q(&c, 0, 1), 0x0000000011111111ull);
	c.gpr[EMU_RCX] = 0xabcd1234ull;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xc4, 0xc1, 0x0f); /* pinsrw xmm0, ecx, 15 -> 7 */
	CHECK_EQ(xmm_q(&c, 0, 1), 0x1234000011111111ull);
	c.gpr[EMU_RAX] = ~0ull;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xc5, 0xc0, 7); /* pextrw eax, xmm0, 7 */
	CHECK_EQ(c.gpr[EMU_RAX], 0x1234);

	/* movss/movsd loads zero the rest; register forms keep it. */
	fx_init_cpu(&c);
	set_xmm_q(&c, 2, ~0ull, ~0ull);
	set_xmm_q(&c, 1, 0x1122334455667788ull, 0x99aabbccddeeff00ull);
	memcpy(fx->ram + GBUF, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	c.gpr[EMU_RSI] = GBUF;
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x10, 0x16); /* movss xmm2, [rsi] */
	CHECK_EQ(xmm_q(&c, 2, 0), 0x04030201ull);
	CHECK_EQ(xmm_q(&c, 2, 1), 0);
	set_xmm_q(&c, 2, ~0ull, ~0ull);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x10, 0xd1); /* movsd xmm2, xmm1 */
	CHECK_EQ(xmm_q(&c, 2, 0), 0x1122334455667788ull);
	CHECK_EQ(xmm_q(&c, 2, 1), ~0ull);
	FX_STEP(fx, &c, &res, 0x0f, 0x12, 0xd1); /* movhlps xmm2, xmm1 */
	CHECK_EQ(xmm_q(&c, 2, 0), 0x99aabbccddeeff00ull);

	/* Floating point: with two NaNs the first source's comes back, made quiet; IE for the
	 * signalling one. */
	fx_init_cpu(&c);
	set_xmm_q(&c, 0, 0x7ff8000000000001ull, 0x5555);
	set_xmm_q(&c, 1, 0x7ff0000000000002ull, 0x6666);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x58, 0xc1); /* addsd xmm0, xmm1 */
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(xmm_q(&c, 0, 0), 0x7ff8000000000001ull);
	CHECK_EQ(xmm_q(&c, 0, 1), 0x5555);
	CHECK_EQ(c.xsave[24] & 0x3f, 0x01);
	set_xmm_q(&c, 0, 0x7ff0000000000003ull, 0);
	set_xmm_q(&c, 1, 0xfff8000000000004ull, 0);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x59, 0xc1); /* mulsd xmm0, xmm1 */
	CHECK_EQ(xmm_q(&c, 0, 0), 0x7ff8000000000003ull);
	/* inf - inf: the default NaN. 1/0: +inf and ZE. */
	fx_init_cpu(&c);
	set_xmm_q(&c, 0, 0x7ff0000000000000ull, 0);
	set_xmm_q(&c, 1, 0x7ff0000000000000ull, 0);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x5c, 0xc1); /* subsd */
	CHECK_EQ(xmm_q(&c, 0, 0), 0xfff8000000000000ull);
	CHECK_EQ(c.xsave[24] & 0x3f, 0x01);
	fx_init_cpu(&c);
	set_xmm_q(&c, 0, 0x3ff0000000000000ull, 0);
	set_xmm_q(&c, 1, 0, 0);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x5e, 0xc1); /* divsd */
	CHECK_EQ(xmm_q(&c, 0, 0), 0x7ff0000000000000ull);
	CHECK_EQ(c.xsave[24] & 0x3f, 0x04);
	/* 1/3 rounds to nearest, down under RC=down; PE either way. */
	fx_init_cpu(&c);
	set_xmm_q(&c, 0, 0x3ff0000000000000ull, 0);
	set_xmm_q(&c, 1, 0x4008000000000000ull, 0);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x5e, 0xc1);
	CHECK_EQ(xmm_q(&c, 0, 0), 0x3fd5555555555555ull);
	CHECK_EQ(c.xsave[24] & 0x3f, 0x20);
	fx_init_cpu(&c);
	set_mxcsr(&c, 0x5f80); /* up */
	set_xmm_q(&c, 0, 0x3ff0000000000000ull, 0);
	set_xmm_q(&c, 1, 0x4008000000000000ull, 0);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x5e, 0xc1);
	CHECK_EQ(xmm_q(&c, 0, 0), 0x3fd5555555555556ull);

	/* minsd/maxsd: the second operand for two zeros and for a NaN. */
	fx_init_cpu(&c);
	set_xmm_q(&c, 0, 0x8000000000000000ull, 0);
	set_xmm_q(&c, 1, 0, 0);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x5d, 0xc1);
	CHECK_EQ(xmm_q(&c, 0, 0), 0);
	set_xmm_q(&c, 0, 0x7ff8000000000000ull, 0);
	set_xmm_q(&c, 1, 0x3ff0000000000000ull, 0);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x5f, 0xc1);
	CHECK_EQ(xmm_q(&c, 0, 0), 0x3ff0000000000000ull);
	CHECK_EQ(c.xsave[24] & 0x3f, 0x01);

	/* Conversions: NaN and out of range give the integer indefinite; RC applies. */
	fx_init_cpu(&c);
	c.gpr[EMU_RAX] = ~0ull;
	set_xmm_q(&c, 1, 0x7ff8000000000000ull, 0);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x2c, 0xc1); /* cvttsd2si eax, xmm1 */
	CHECK_EQ(c.gpr[EMU_RAX], 0x80000000ull);
	CHECK_EQ(c.xsave[24] & 0x3f, 0x01);
	set_xmm_q(&c, 1, 0x43e0000000000000ull, 0); /* 2^63 */
	FX_STEP(fx, &c, &res, 0xf2, 0x48, 0x0f, 0x2c, 0xc1);
	CHECK_EQ(c.gpr[EMU_RAX], 0x8000000000000000ull);
	set_xmm_q(&c, 1, 0x4004000000000000ull, 0);    /* 2.5 */
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x2d, 0xc1); /* cvtsd2si eax, xmm1: to even */
	CHECK_EQ(c.gpr[EMU_RAX], 2);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x2c, 0xc1); /* cvttsd2si: toward zero */
	CHECK_EQ(c.gpr[EMU_RAX], 2);
	set_mxcsr(&c, 0x5f80);
	FX_STEP(fx, &c, &res, 0xf2, 0x0f, 0x2d, 0xc1); /* up */
	CHECK_EQ(c.gpr[EMU_RAX], 3);
	c.gpr[EMU_RCX] = (uint64_t)-7;
	FX_STEP(fx, &c, &res, 0xf2, 0x48, 0x0f, 0x2a, 0xc1); /* cvtsi2sd xmm0, rcx */
	CHECK_EQ(xmm_q(&c, 0, 0), 0xc01c000000000000ull);
	c.gpr[EMU_RCX] = (1ull << 53) + 1;
	FX_STEP(fx, &c, &res, 0xf2, 0x48, 0x0f, 0x2a, 0xc1); /* rounds up under RC=up */
	CHECK_EQ(xmm_q(&c, 0, 0), 0x4340000000000001ull);

	/* comisd: ZF PF CF, OF SF AF cleared; unordered sets all three. */
	fx_init_cpu(&c);
	c.rflags = 0x2 | FX_ARITH;
	set_xmm_q(&c, 0, 0x3ff0000000000000ull, 0);
	set_xmm_q(&c, 1, 0x4000000000000000ull, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x2f, 0xc1);
	CHECK_EQ(c.rflags & FX_ARITH, FX_CF);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x2f, 0xc8); /* comisd xmm1, xmm0 */
	CHECK_EQ(c.rflags & FX_ARITH, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x2f, 0xc0);
	CHECK_EQ(c.rflags & FX_ARITH, FX_ZF);
	CHECK_EQ(c.xsave[24] & 0x3f, 0);
	set_xmm_q(&c, 1, 0x7ff8000000000000ull, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x2e, 0xc1); /* ucomisd: quiet NaN, no IE */
	CHECK_EQ(c.rflags & FX_ARITH, FX_ZF | FX_PF | FX_CF);
	CHECK_EQ(c.xsave[24] & 0x3f, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x2f, 0xc1); /* comisd: IE */
	CHECK_EQ(c.xsave[24] & 0x3f, 1);

	/* An MXCSR flag alone marks the SSE state in use. */
	fx_init_cpu(&c);
	memset(c.xsave + FX_HDR, 0, 8);
	c.dirty = 0;
	set_xmm_q(&c, 1, 0x7ff0000000000001ull, 0);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x2e, 0xc1); /* ucomisd, signalling NaN */
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.xsave[24] & 0x3f, 1);
	memcpy(&bv, c.xsave + FX_HDR, 8);
	CHECK(bv & 2);
	CHECK(c.dirty & EMU_DIRTY_XSAVE);

	/* Legacy SSE keeps the YMM upper halves; XMM8-15 through REX. */
	fx_init_cpu(&c);
	set_pattern(&c);
	fx_get_ymmh(&c, 8, hi);
	fx_get_xmm(&c, 8, x);
	fx_get_xmm(&c, 9, y);
	FX_STEP(fx, &c, &res, 0x66, 0x45, 0x0f, 0xfc, 0xc1); /* paddb xmm8, xmm9 */
	CHECK_EQ(res.status, EMU_DONE);
	for (int i = 0; i < 16; i++)
		x[i] = (uint8_t)(x[i] + y[i]);
	fx_get_xmm(&c, 8, y);
	CHECK(memcmp(x, y, 16) == 0);
	fx_get_ymmh(&c, 8, y);
	CHECK(memcmp(y, hi, 16) == 0);
	set_xmm_q(&c, 12, 0x3ff8000000000000ull, 0xabcdefull);
	set_xmm_q(&c, 13, 0x4002000000000000ull, 0);
	fx_get_ymmh(&c, 12, hi);
	FX_STEP(fx, &c, &res, 0xf2, 0x45, 0x0f, 0x58, 0xe5); /* addsd xmm12, xmm13 */
	CHECK_EQ(xmm_q(&c, 12, 0), 0x400e000000000000ull);   /* 1.5 + 2.25 */
	CHECK_EQ(xmm_q(&c, 12, 1), 0xabcdefull);
	fx_get_ymmh(&c, 12, y);
	CHECK(memcmp(y, hi, 16) == 0);

	/* MMX registers and SSE4.1's pextrw m16: reported, nothing changed. */
	/* clang-format off */
	static const uint8_t other[][7] = {
		{3, 0x0f, 0x74, 0xc1},		   /* pcmpeqb mm0, mm1 */
		{3, 0x0f, 0xd7, 0xc1},		   /* pmovmskb eax, mm1 */
		{3, 0x0f, 0xfc, 0x06},		   /* paddb mm0, [rsi] */
		{4, 0x0f, 0xc4, 0x06, 0x01},	   /* pinsrw mm0, [rsi], 1 */
		{4, 0x0f, 0x71, 0xd0, 0x03},	   /* psrlw mm0, 3 */
		{6, 0x66, 0x0f, 0x3a, 0x15, 0x06, 0x03}, /* pextrw [rsi], xmm0, 3 */
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		fx_init_cpu(&c);
		c.gpr[EMU_RSI] = GBUF;
		fx_snapshot(fx, &c, &save);
		fx_step(fx, &c, other[i] + 1, other[i][0], &res);
		CHECK_EQ(res.status, EMU_UNSUPPORTED);
		CHECK(res.why[0] != 0);
		FX_CHECK_UNCHANGED(fx, &c, &save);
	}

	/* The string movsd shares the mnemonic: it still moves a dword, CR0.TS or not. */
	fx_init_cpu(&c);
	c.cr0 |= FX_CR0_TS;
	memcpy(fx->ram + GBUF, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	memset(fx->ram + GBUF + 0x100, 0, 8);
	c.gpr[EMU_RSI] = GBUF;
	c.gpr[EMU_RDI] = GBUF + 0x100;
	FX_STEP(fx, &c, &res, 0xa5);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(fx->ram + GBUF + 0x100, "\x11\x22\x33\x44\x00", 5) == 0);
	CHECK_EQ(c.gpr[EMU_RSI], GBUF + 4);
	c.gpr[EMU_RCX] = 1;
	FX_STEP(fx, &c, &res, 0xf3, 0xa5); /* rep movsd */
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(fx->ram + GBUF + 0x104, "\x55\x66\x77\x88", 4) == 0);
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture setup failed\n");
		return T_EXIT_FAIL;
	}
	test_native(&fx);
	test_alignment(&fx);
	test_availability(&fx);
	test_known(&fx);
	fprintf(stderr,
		"%zu instruction forms; compared with the host CPU: %u runs (%u could not "
		"run natively)\n",
		NCASES, native_compared, native_skipped);
	CHECK(native_compared > 0);
	fx_fini(&fx);
	return t_done();
}
