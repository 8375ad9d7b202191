/* dbt_internal.h: the engine's shared state: vCPUs, the code cache and its page map. */
#ifndef MVM_DBT_INTERNAL_H
#define MVM_DBT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "dbt/dbt.h"
#include "dbt/ptwatch.h"
#include "emu/vcpu.h"

#define DBT_BLOCK_MAX_UOPS 64
#define DBT_MAX_CPUS	   64	/* INIT/SIPI requests are a 64-bit mask */
#define DBT_HASH_BITS	   16
#define DBT_DMA_QUEUE	   64
#define DBT_RF_IF	   (1ull << 9)
#define DBT_EXC_PF	   14

struct dbt_block {
	uint64_t rip;			/* linear address of the first instruction */
	uint64_t gpa;			/* its physical address */
	const uint8_t *host;		/* and where that is in mvm (chained blocks check it) */
	uint64_t pfn[2];		/* physical pages the code covers (npages of them) */
	struct dbt_block *hash_next;
	struct dbt_block *page_next[2];	/* the blocks of pfn[i] */
	struct dbt_block *link[2];	/* chained successors: taken, not taken */
	uint32_t link_epoch[2];
	uint32_t mode;
	uint16_t n;			/* uops, the terminator included */
	uint8_t npages;
	bool valid;
	struct emu_uop uops[];
};

struct dbt_cpu {
	struct emu_vcpu v;
	struct dbt *d;
	_Atomic bool irq_check;		/* the controllers kicked: look at intc pending */
	bool started;			/* running (BSP) or SIPI received */
	uint64_t insns;
};

/* Second level of the page map: which blocks sit on each physical page of 1 GiB. */
#define DBT_PAGE_L2_BITS 18
struct dbt_page_l2 {
	struct dbt_block *head[1u << DBT_PAGE_L2_BITS];
};

struct dbt {
	struct guest_mem *mem;
	struct bus *pio, *mmio;
	struct stop_ctl *stop;
	unsigned int ncpus;
	struct dbt_cpu *cpus;
	struct emu_features features;
	struct emu_platform plat;
	struct dbt_irq_ops irq;

	/* Code cache: a bump arena of blocks, a hash table, the page map. */
	uint8_t *arena;
	uint64_t arena_size, arena_used;
	struct dbt_block *hash[1u << DBT_HASH_BITS];
	struct dbt_page_l2 **pages;	/* by gpa >> 30 */
	unsigned int npage_l1;
	uint32_t epoch;			/* bumped on every invalidation: cuts all chains */

	/* Wake-ups and requests from other threads. */
	_Atomic bool attention;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool sleeping;
	struct { uint64_t gpa, len; } dma[DBT_DMA_QUEUE];
	unsigned int ndma;
	bool dma_overflow;
	_Atomic uint64_t pending_init, pending_sipi; /* bit per vCPU */
	uint8_t sipi_vector[DBT_MAX_CPUS];

	/* --accel hybrid: user mode runs natively (dbt_set_native_user()). */
	struct dbt_native_ops native;
	bool native_on;
	struct ptwatch ptw;
	struct dbt_block *scratch;	/* user-mode blocks: translated, run once, never kept */
	bool native_skip;		/* the native side refused this CR3's user code */
	uint64_t native_skip_cr3;
	uint64_t native_runs, native_flushes, native_zaps, user_blocks;

	/* Counters. */
	uint64_t blocks_translated, uops_translated, chain_hits, lookups, invalidations,
		 flushes, interrupts, exceptions;
	uint64_t ns_run, ns_idle;
};

/* cache.c */
int dbt_cache_init(struct dbt *d, uint64_t bytes);
void dbt_cache_fini(struct dbt *d);
/* The block for the current state of (c) at its RIP: looked up, or translated. Returns it,
 * or NULL with (*exit) EXIT_FAULT (fetch fault in c->v.fault) or EXIT_STOP. */
struct dbt_block *dbt_block_get(struct dbt *d, struct dbt_cpu *c, int *exit);
/* The same for user mode under --accel hybrid: translated into d->scratch, never cached (native
 * user code may rewrite its code behind the engine's back). */
struct dbt_block *dbt_block_scratch(struct dbt *d, struct dbt_cpu *c, int *exit);
/* Drops the blocks on the physical pages of [gpa, gpa+len). */
void dbt_invalidate(struct dbt *d, uint64_t gpa, uint64_t len);
bool dbt_is_code_page(struct dbt *d, uint64_t gpa);
uint32_t dbt_mode_key(const struct emu_vcpu *v);

/* cpu_model.c */
void dbt_cpu_model_features(struct emu_features *f);
void dbt_cpuid(struct emu_vcpu *v, uint32_t leaf, uint32_t sub, uint32_t out[4]);
uint64_t dbt_tsc(struct emu_vcpu *v);

#endif
