/* start_info.c: the PVH struct hvm_start_info (start_info.h in Xen's public headers): command
 * line and memory map. The loader is trusted only as far as the magic; every pointer is
 * checked against the 8 GiB identity map before use. */
#include "guest.h"

#define IDMAP_END   (8ull << 30)
#define CMDLINE_MAX 4096

const struct hvm_start_info *start_info;

static bool mapped(uint64_t addr, uint64_t len)
{
	return addr && addr < IDMAP_END && len <= IDMAP_END - addr;
}

bool start_info_valid(void)
{
	return start_info && start_info->magic == HVM_START_MAGIC && start_info->version >= 1;
}

const char *cmdline(void)
{
	if (!start_info_valid() || !mapped(start_info->cmdline_paddr, CMDLINE_MAX))
		return "";
	return (const char *)(uintptr_t)start_info->cmdline_paddr;
}

bool cmdline_get(const char *key, char *buf, size_t size)
{
	const char *p = cmdline();
	size_t klen = strlen(key);

	while (*p) {
		const char *word = p;
		size_t wlen = 0;

		while (word[wlen] && word[wlen] != ' ')
			wlen++;
		if (wlen >= klen && !strncmp(word, key, klen) &&
		    (wlen == klen || word[klen] == '=')) {
			const char *v = wlen == klen ? word + wlen : word + klen + 1;
			size_t vlen = (size_t)(word + wlen - v);

			if (size) {
				if (vlen >= size)
					vlen = size - 1;
				memcpy(buf, v, vlen);
				buf[vlen] = '\0';
			}
			return true;
		}
		p = word + wlen;
		while (*p == ' ')
			p++;
	}
	return false;
}

uint64_t cmdline_uint(const char *key, uint64_t def)
{
	char buf[32];
	const char *s = buf;
	unsigned int base = 10;
	uint64_t v = 0;

	if (!cmdline_get(key, buf, sizeof(buf)) || !buf[0])
		return def;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		unsigned int d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned int)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned int)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned int)(*s - 'A' + 10);
		else
			return def;
		v = v * base + d;
	}
	return v;
}

unsigned int memmap_count(void)
{
	uint64_t n;

	if (!start_info_valid())
		return 0;
	n = start_info->memmap_entries;
	if (!mapped(start_info->memmap_paddr, n * sizeof(struct hvm_memmap_table_entry)))
		return 0;
	return (unsigned int)n;
}

const struct hvm_memmap_table_entry *memmap_entry(unsigned int i)
{
	const struct hvm_memmap_table_entry *map;

	if (i >= memmap_count())
		return NULL;
	map = (const struct hvm_memmap_table_entry *)(uintptr_t)start_info->memmap_paddr;
	return &map[i];
}

bool memmap_is_ram(uint64_t addr, uint64_t len)
{
	const struct hvm_memmap_table_entry *e;

	for (unsigned int i = 0; (e = memmap_entry(i)); i++) {
		if (e->type == E820_RAM && addr >= e->addr && addr - e->addr <= e->size &&
		    len <= e->size - (addr - e->addr))
			return true;
	}
	return false;
}

const char *e820_type_name(uint32_t type)
{
	switch (type) {
	case E820_RAM:
		return "ram";
	case E820_RESERVED:
		return "reserved";
	case E820_ACPI:
		return "acpi";
	case E820_NVS:
		return "nvs";
	case E820_UNUSABLE:
		return "unusable";
	default:
		return "unknown-type";
	}
}
