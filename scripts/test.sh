#!/usr/bin/env bash
# test.sh: the whole test suite (unit, kvm, e2e), installing what it needs first.
#   1. Debian packages, 2. mvm and the test guests, 3. the guest kernel and initramfs (cached),
#   4. ctest on the normal build, 5. unit and bad-input tests on an ASan+UBSan build.
# Set MVM_REQUIRE_KVM=1 (CI does) to turn every skip of a /dev/kvm test into a failure.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc)

"$top/scripts/deps.sh"
echo "test: building mvm" >&2
"$top/scripts/build.sh"
echo "test: building mvm with ASan+UBSan" >&2
MVM_BUILD_DIR="$top/build-asan" "$top/scripts/build.sh" -DMVM_SANITIZE=ON
eval "$("$top/scripts/guest-images.sh")"
export MVM_VMLINUX MVM_BZIMAGE MVM_INITRAMFS

status=0
echo "test: running the suite" >&2
ctest --test-dir "$top/build" --output-on-failure -j"$jobs" || status=1
echo "test: running unit and bad-input tests under ASan+UBSan" >&2
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir "$top/build-asan" --output-on-failure -j"$jobs" -L 'unit|sanitize' \
	-LE qemu || status=1
exit $status
