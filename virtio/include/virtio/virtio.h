/* virtio.h: the virtio 1.2 ABI mvm uses from the kernel's UAPI headers, under the spec's names
 * where those differ, and mvm's own helpers around it. Every field the guest sees is
 * little-endian (virtio 1.2 section 1.4); the layouts mvm relies on are asserted. */
#ifndef MVM_VIRTIO_VIRTIO_H
#define MVM_VIRTIO_VIRTIO_H

#include <stddef.h>
#include <stdint.h>

/* The ABI comes from the kernel's UAPI headers (virtio 1.2 sections 2.1, 2.7, 5, 6): device
 * IDs, feature bits, status bits, the split ring's descriptor, available and used layouts. */
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

/* mvm's names for them: the spec's (section 2.1 "Device Status Field"; section 6 calls the
 * ring's bits VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX). */
#define VIRTIO_STATUS_ACKNOWLEDGE VIRTIO_CONFIG_S_ACKNOWLEDGE
#define VIRTIO_STATUS_DRIVER	  VIRTIO_CONFIG_S_DRIVER
#define VIRTIO_STATUS_DRIVER_OK	  VIRTIO_CONFIG_S_DRIVER_OK
#define VIRTIO_STATUS_FEATURES_OK VIRTIO_CONFIG_S_FEATURES_OK
#define VIRTIO_STATUS_NEEDS_RESET VIRTIO_CONFIG_S_NEEDS_RESET
#define VIRTIO_STATUS_FAILED	  VIRTIO_CONFIG_S_FAILED
#define VIRTIO_F_INDIRECT_DESC	  VIRTIO_RING_F_INDIRECT_DESC
#define VIRTIO_F_EVENT_IDX	  VIRTIO_RING_F_EVENT_IDX

#define VIRTIO_BIT(n) (UINT64_C(1) << (n))

/* Interrupt status bits (section 4.2.2, InterruptStatus). */
#define VIRTIO_ISR_USED	  VIRTIO_MMIO_INT_VRING
#define VIRTIO_ISR_CONFIG VIRTIO_MMIO_INT_CONFIG

/* ---- split virtqueue (section 2.7) ---- */
#define VIRTQ_MAX_SIZE 32768

/* What mvm reads and writes of the ring (section 2.7.5-2.7.8), checked against the headers. */
_Static_assert(sizeof(struct vring_desc) == 16, "vring_desc size");
_Static_assert(offsetof(struct vring_desc, len) == 8, "vring_desc.len");
_Static_assert(offsetof(struct vring_desc, flags) == 12, "vring_desc.flags");
_Static_assert(offsetof(struct vring_desc, next) == 14, "vring_desc.next");
_Static_assert(sizeof(struct vring_avail) == 4, "vring_avail header size");
_Static_assert(sizeof(struct vring_used_elem) == 8, "vring_used_elem size");
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
#define VRING_DESC_ALIGN  VRING_DESC_ALIGN_SIZE
#define VRING_AVAIL_ALIGN VRING_AVAIL_ALIGN_SIZE
#define VRING_USED_ALIGN  VRING_USED_ALIGN_SIZE

#endif
