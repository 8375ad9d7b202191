/* mmio_regs.h: the virtio-mmio register layout (virtio 1.2 section 4.2.2), from the kernel's
 * <linux/virtio_mmio.h> (defines only, so the freestanding test guests' driver uses the same
 * definitions as the device). */
#ifndef MVM_VIRTIO_MMIO_REGS_H
#define MVM_VIRTIO_MMIO_REGS_H

#include <linux/virtio_mmio.h>

/* The spec's names for the driver and device areas of a queue; Linux keeps the legacy ring
 * names (avail, used) for the same registers. */
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW  VIRTIO_MMIO_QUEUE_AVAIL_LOW
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH VIRTIO_MMIO_QUEUE_AVAIL_HIGH
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW  VIRTIO_MMIO_QUEUE_USED_LOW
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH VIRTIO_MMIO_QUEUE_USED_HIGH

#define VIRTIO_MMIO_MAGIC 0x74726976 /* MagicValue: "virt" (section 4.2.2) */

#endif
