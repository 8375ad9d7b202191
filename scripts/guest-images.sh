#!/usr/bin/env bash
# guest-images.sh: build (or reuse from the cache) the default guest: the Linux kernel and the
# busybox initramfs. Prints three lines for `eval`:
#   MVM_VMLINUX=... MVM_BZIMAGE=... MVM_INITRAMFS=...
# Progress goes to stderr. The first build takes ~8 minutes on 2 cores; later runs reuse it.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kernel_out=$("$top/guest-kernels/linux/build.sh") || {
	echo "guest-images: the guest kernel build failed (see the messages above)" >&2
	exit 1
}
initramfs_out=$("$top/guest-kernels/initramfs/build.sh") || {
	echo "guest-images: the initramfs build failed (see the messages above)" >&2
	exit 1
}
vmlinux=$(sed -n 's/^vmlinux=//p' <<<"$kernel_out" | tail -n 1)
bzimage=$(sed -n 's/^bzImage=//p' <<<"$kernel_out" | tail -n 1)
initramfs=$(sed -n 's/^initramfs=//p' <<<"$initramfs_out" | tail -n 1)
printf 'MVM_VMLINUX=%q\nMVM_BZIMAGE=%q\nMVM_INITRAMFS=%q\n' "$vmlinux" "$bzimage" "$initramfs"
