/* cache.c: the code cache: translation of guest basic blocks into uops, the hash table that
 * finds them, the page map that knows which physical pages hold them, invalidation when such
 * a page is written, and the whole-cache flush when the arena is full. */
#define pr_fmt(fmt) "dbt: " fmt
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dbt_internal.h"
#include "util/log.h"

#define DEFAULT_CACHE_BYTES (64ull << 20)
#define BLOCK_BYTES_MAX \
	(sizeof(struct dbt_block) + (DBT_BLOCK_MAX_UOPS + 1) * sizeof(struct emu_uop))

int dbt_cache_init(struct dbt *d, uint64_t bytes)
{
	uint64_t top = 0;

	d->arena_size = bytes ? bytes : DEFAULT_CACHE_BYTES;
	if (d->arena_size < 16 * BLOCK_BYTES_MAX)
		d->arena_size = 16 * BLOCK_BYTES_MAX;
	d->arena = mmap(NULL, d->arena_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (d->arena == MAP_FAILED) {
		d->arena = NULL;
		pr_err("code cache of %llu MiB: %s", (unsigned long long)(d->arena_size >> 20),
		       strerror(errno));
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < d->mem->n; i++) {
		uint64_t end = d->mem->r[i].gpa + d->mem->r[i].size;

		if (end > top)
			top = end;
	}
	d->npage_l1 = (unsigned int)((top + (1ull << 30) - 1) >> 30);
	d->pages = calloc(d->npage_l1 ? d->npage_l1 : 1, sizeof(*d->pages));
	if (!d->pages) {
		munmap(d->arena, d->arena_size);
		d->arena = NULL;
		return -ENOMEM;
	}
	return 0;
}

void dbt_cache_fini(struct dbt *d)
{
	if (d->pages)
		for (unsigned int i = 0; i < d->npage_l1; i++)
			free(d->pages[i]);
	free(d->pages);
	if (d->arena)
		munmap(d->arena, d->arena_size);
	free(d->scratch);
}

/* The list head of physical page (pfn), allocating its second-level table when (create). */
static struct dbt_block **page_head(struct dbt *d, uint64_t pfn, bool create)
{
	uint64_t l1 = pfn >> DBT_PAGE_L2_BITS;

	if (l1 >= d->npage_l1)
		return NULL;
	if (!d->pages[l1]) {
		if (!create)
			return NULL;
		d->pages[l1] = calloc(1, sizeof(struct dbt_page_l2));
		if (!d->pages[l1])
			return NULL;
	}
	return &d->pages[l1]->head[pfn & ((1u << DBT_PAGE_L2_BITS) - 1)];
}

bool dbt_is_code_page(struct dbt *d, uint64_t gpa)
{
	struct dbt_block **h = page_head(d, gpa >> 12, false);

	return h && *h;
}

uint32_t dbt_mode_key(const struct emu_vcpu *v)
{
	const struct emu_cpu *c = &v->cpu;

	return (uint32_t)v->mode64 | (uint32_t)c->seg[EMU_CS].db << 1 |
	       (uint32_t)c->seg[EMU_SS].db << 2 | (uint32_t)(c->cr0 & 1) << 3 |
	       (uint32_t)((c->efer >> 10) & 1) << 4;
}

static unsigned int hash_of(uint64_t rip, uint64_t gpa)
{
	uint64_t h = (rip ^ (gpa * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return (unsigned int)(h >> (64 - DBT_HASH_BITS));
}

static void flush_all(struct dbt *d)
{
	memset(d->hash, 0, sizeof(d->hash));
	for (unsigned int i = 0; i < d->npage_l1; i++)
		if (d->pages[i])
			memset(d->pages[i], 0, sizeof(struct dbt_page_l2));
	d->arena_used = 0;
	d->epoch++;
	d->flushes++;
}

static void unlink_page(struct dbt *d, struct dbt_block *b, unsigned int i)
{
	struct dbt_block **pp = page_head(d, b->pfn[i], false);

	while (pp && *pp) {
		struct dbt_block *x = *pp;
		unsigned int k = x->pfn[0] == b->pfn[i] ? 0 : 1;

		if (x == b) {
			*pp = x->page_next[k];
			return;
		}
		pp = &x->page_next[k];
	}
}

static void drop_block(struct dbt *d, struct dbt_block *b)
{
	struct dbt_block **pp = &d->hash[hash_of(b->rip, b->gpa)];

	if (!b->valid)
		return;
	b->valid = false;
	while (*pp && *pp != b)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = b->hash_next;
	/* A block running now leaves at its next uop (uop_stale). */
	for (unsigned int i = 0; i < b->n; i++)
		b->uops[i].fn = uop_stale;
	d->invalidations++;
}

void dbt_invalidate(struct dbt *d, uint64_t gpa, uint64_t len)
{
	uint64_t first = gpa >> 12, last = (gpa + (len ? len : 1) - 1) >> 12;

	for (uint64_t pfn = first; pfn <= last; pfn++) {
		struct dbt_block **h = page_head(d, pfn, false);

		while (h && *h) {
			struct dbt_block *b = *h;
			unsigned int k = b->pfn[0] == pfn ? 0 : 1;

			*h = b->page_next[k];
			if (b->npages == 2)
				unlink_page(d, b, k ^ 1);
			drop_block(d, b);
		}
	}
	d->epoch++;
}

/* Puts (b) on the list of page (i); a page that becomes code loses its fast write path in
 * every vCPU's TLB, so stores to it are seen. */
static void add_page(struct dbt *d, struct dbt_block *b, unsigned int i)
{
	struct dbt_block **h = page_head(d, b->pfn[i], true);

	if (!h)
		return;
	if (!*h)
		for (unsigned int c = 0; c < d->ncpus; c++)
			emu_tlb_drop_writes(&d->cpus[c].v);
	b->page_next[i] = *h;
	*h = b;
}

static inline int code_linear(struct emu_vcpu *v, uint64_t rip, uint64_t *la)
{
	if (v->mode64) {
		*la = rip;
		return 0;
	}
	return emu_code_linear(v, rip, la);
}

/* Decodes the block at (rip) into (b). Returns 0 or the exit (fault, stop). */
static int fill(struct dbt_cpu *c, struct dbt_block *b, uint64_t rip, uint64_t gpa,
		uint32_t mode)
{
	struct emu_vcpu *v = &c->v;
	uint64_t pc = rip;
	unsigned int n = 0;
	int ret;

	memset(b, 0, sizeof(*b));
	b->rip = rip;
	b->gpa = gpa;
	b->host = NULL;
	b->mode = mode;
	b->pfn[0] = gpa >> 12;
	b->npages = 1;
	for (;;) {
		uint8_t bytes[24] = {0};
		uint64_t la, igpa;
		unsigned int avail;
		struct emu_uop *u = &b->uops[n];
		int len;

		ret = code_linear(v, pc, &la);
		if (ret)
			goto fail;
		avail = 4096 - (la & 0xfff);
		if (avail > 15)
			avail = 15;
		ret = emu_fetch(v, la, bytes, avail, &igpa);
		if (ret)
			goto fail;
		if (!n)
			b->host = emu_fetch_host_cached(v, la);
		len = emu_decode(v, pc, bytes, avail, u);
		if (len == 0) {
			/* The instruction crosses into the next page: fetch it whole. A fault
			 * there belongs to this instruction only if it is the block's first. */
			uint64_t gpa2;

			ret = emu_fetch(v, la, bytes, 15, NULL);
			if (ret) {
				if (n)
					break;
				goto fail;
			}
			if (emu_fetch_gpa(v, (la + avail) & (v->mode64 ? ~0ull : 0xffffffffull),
					  &gpa2)) {
				if (n)
					break;
				ret = EXIT_FAULT;
				goto fail;
			}
			len = emu_decode(v, pc, bytes, 15, u);
			if (len <= 0 && len != -1) {
				ret = EXIT_STOP;
				goto fail;
			}
			b->pfn[1] = gpa2 >> 12;
			b->npages = 2;
			u->pos = (uint16_t)n;
			n++;
			break;
		}
		u->pos = (uint16_t)n;
		n++;
		pc = u->next_rip;
		if (emu_uop_ends_block(u) || n == DBT_BLOCK_MAX_UOPS || len < 0)
			break;
		if (((la + (uint64_t)len) & 0xfff) == 0 && (uint64_t)len <= 15)
			break; /* the next instruction is on another page */
	}
	/* The terminator: fall through to the next instruction, through link 0. */
	b->uops[n] = (struct emu_uop){.fn = uop_jmp, .imm = b->uops[n - 1].next_rip,
				      .next_rip = b->uops[n - 1].next_rip, .len = 0,
				      .pos = (uint16_t)n,
				      .reg = UOP_REG_NONE, .rm = UOP_REG_NONE};
	b->n = (uint16_t)(n + 1);
	return 0;
fail:
	return ret;
}

static struct dbt_block *translate(struct dbt *d, struct dbt_cpu *c, uint64_t rip, uint64_t gpa,
				   uint32_t mode, int *exit)
{
	struct dbt_block *b;
	unsigned int n;
	int ret;

	if (d->arena_used + BLOCK_BYTES_MAX > d->arena_size)
		flush_all(d);
	b = (struct dbt_block *)(d->arena + d->arena_used);
	ret = fill(c, b, rip, gpa, mode);
	if (ret) {
		*exit = ret;
		return NULL;
	}
	n = b->n - 1u;
	b->valid = true;
	d->arena_used += sizeof(*b) + b->n * sizeof(struct emu_uop);
	d->arena_used = (d->arena_used + 63) & ~63ull;
	d->blocks_translated++;
	d->uops_translated += n;
	{
		unsigned int h = hash_of(rip, gpa);

		b->hash_next = d->hash[h];
		d->hash[h] = b;
	}
	add_page(d, b, 0);
	if (b->npages == 2 && b->pfn[1] != b->pfn[0])
		add_page(d, b, 1);
	else
		b->npages = 1;
	return b;
}

struct dbt_block *dbt_block_get(struct dbt *d, struct dbt_cpu *c, int *exit)
{
	struct emu_vcpu *v = &c->v;
	uint64_t rip = v->cpu.rip, la, gpa;
	uint32_t mode = dbt_mode_key(v);
	struct dbt_block *b;
	int ret;

	d->lookups++;
	ret = code_linear(v, rip, &la);
	if (!ret)
		ret = emu_fetch_gpa(v, la, &gpa);
	if (ret) {
		*exit = ret;
		return NULL;
	}
	for (b = d->hash[hash_of(rip, gpa)]; b; b = b->hash_next)
		if (b->rip == rip && b->gpa == gpa && b->mode == mode)
			return b;
	return translate(d, c, rip, gpa, mode, exit);
}

struct dbt_block *dbt_block_scratch(struct dbt *d, struct dbt_cpu *c, int *exit)
{
	struct emu_vcpu *v = &c->v;
	uint64_t la, gpa;
	int ret;

	if (!d->scratch) {
		d->scratch = aligned_alloc(64, (BLOCK_BYTES_MAX + 63) & ~(size_t)63);
		if (!d->scratch) {
			snprintf(v->why, sizeof(v->why), "out of memory for a user-mode block");
			*exit = EXIT_STOP;
			return NULL;
		}
	}
	ret = code_linear(v, v->cpu.rip, &la);
	if (!ret)
		ret = emu_fetch_gpa(v, la, &gpa);
	if (!ret)
		ret = fill(c, d->scratch, v->cpu.rip, gpa, dbt_mode_key(v));
	if (ret) {
		*exit = ret;
		return NULL;
	}
	/* Not valid: never linked to or from, never found again. */
	d->scratch->valid = false;
	d->user_blocks++;
	return d->scratch;
}
