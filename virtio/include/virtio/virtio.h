/* virtio.h: virtio 1.2 constants and the split-ring layout the guest shares with us. Every
 * field the guest sees is little-endian (virtio 1.2 section 1.4); the layouts are asserted. */
#ifndef MVM_VIRTIO_VIRTIO_H
#define MVM_VIRTIO_VIRTIO_H

#include <stddef.h>
#include <stdint.h>

/* Device IDs (section 5). */
#define VIRTIO_ID_NET	  1
#define VIRTIO_ID_BLOCK	  2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG	  4

/* Device status bits (section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER	  0x02
#define VIRTIO_STATUS_DRIVER_OK	  0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

/* Reserved feature bits (section 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

#define VIRTIO_BIT(n) (UINT64_C(1) << (n))

/* Interrupt status bits (section 4.2.2, InterruptStatus). */
#define VIRTIO_ISR_USED	  0x1
#define VIRTIO_ISR_CONFIG 0x2

/* ---- split virtqueue (section 2.7) ---- */
#define VIRTQ_MAX_SIZE 32768

#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct vring_desc) == 16, "vring_desc size");
_Static_assert(offsetof(struct vring_desc, len) == 8, "vring_desc.len");
_Static_assert(offsetof(struct vring_desc, flags) == 12, "vring_desc.flags");
_Static_assert(offsetof(struct vring_desc, next) == 14, "vring_desc.next");

#define VRING_AVAIL_F_NO_INTERRUPT 1

/* Followed by ring[size] and, with VIRTIO_F_EVENT_IDX, used_event. */
struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};
_Static_assert(sizeof(struct vring_avail) == 4, "vring_avail header size");

#define VRING_USED_F_NO_NOTIFY 1

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};
_Static_assert(sizeof(struct vring_used_elem) == 8, "vring_used_elem size");

/* Followed by ring[size] and, with VIRTIO_F_EVENT_IDX, avail_event. */
struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];
};
_Static_assert(sizeof(struct vring_used) == 4, "vring_used header size");

/* Sizes of the three parts for a queue of (n) entries, event fields included. */
static inline uint64_t vring_desc_bytes(unsigned int n)
{
	return 16ULL * n;
}
static inline uint64_t vring_avail_bytes(unsigned int n)
{
	return 4 + 2ULL * n + 2;
}
static inline uint64_t vring_used_bytes(unsigned int n)
{
	return 4 + 8ULL * n + 2;
}

/* Alignment the driver must give each part (section 2.7, table "Virtqueue Part Alignment"). */
#define VRING_DESC_ALIGN  16
#define VRING_AVAIL_ALIGN 2
#define VRING_USED_ALIGN  4

#endif
