#!/usr/bin/env bash
# test.sh: the whole test suite (unit, kvm, e2e), installing what it needs first.
#   1. Debian packages, 2. mvm and the test guests, 3. the guest kernel and initramfs (cached),
#   4. ctest on the normal build, 5. on an ASan+UBSan build, the unit, kvm and e2e tests but
#   Linux, seccomp and jail ones, 6. the unit tests that run threads, built with
#   ThreadSanitizer, 7. the host code built with clang -Werror, and its unit tests; 8. a short
#   run of each fuzz target (tests/fuzz, libFuzzer; MVM_FUZZ_SECONDS per target, default 20).
# Set MVM_REQUIRE_KVM=1 (CI does) to turn every skip of a /dev/kvm test into a failure, and
# MVM_WERROR=ON (CI does) to build everything with -Werror (the clang and fuzz builds always are).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc)
# Passed after build.sh's own -DMVM_WERROR (which follows CI=true), so it wins when set.
werror=()
[ -n "${MVM_WERROR:-}" ] && werror=(-DMVM_WERROR="$MVM_WERROR")

"$top/scripts/deps.sh"
echo "test: building mvm" >&2
"$top/scripts/build.sh" "${werror[@]}"
echo "test: building mvm with ASan+UBSan" >&2
MVM_BUILD_DIR="$top/build-asan" "$top/scripts/build.sh" -DMVM_SANITIZE=ON "${werror[@]}"
echo "test: building the threaded unit tests with ThreadSanitizer" >&2
tsan_dir=$top/build-tsan
# The unit tests that run mvm's I/O loop or other threads beside their own. Not test_seccomp
# (ThreadSanitizer's runtime makes calls no allow-list has). Not yet the five whose test thread
# reads device state the I/O thread writes, unsynchronised (a sleep, then a look, or a hook
# the test sets while the loop runs), which ThreadSanitizer rightly reports: test_virtio_blk
# (test_in_flight), test_virtio_console (tx_busy), test_virtio_mmio (plain stores to
# avail->flags), test_virtio_net (rx_busy, the DMA observer), test_virtio_balloon (its
# counters, after a sleep).
tsan_tests=($(cd "$top/tests/unit" && grep -l -E 'loop_start|pthread_create' test_*.c |
	sed 's/\.c$//' | grep -v -x -e test_seccomp -e test_virtio_blk -e test_virtio_console \
		-e test_virtio_mmio -e test_virtio_net -e test_virtio_balloon))
if ! { cmake -S "$top" -B "$tsan_dir" -DCMAKE_C_FLAGS=-fsanitize=thread \
	-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread "${werror[@]}" &&
	cmake --build "$tsan_dir" -j"$jobs" --target "${tsan_tests[@]}"; } \
	>"$tsan_dir.build.log" 2>&1; then
	grep -E "error|warning|\*\*\*" "$tsan_dir.build.log" | head -n 30 >&2
	echo "test: the ThreadSanitizer build failed (full log: $tsan_dir.build.log)" >&2
	exit 1
fi
echo "test: building the host code and unit tests with clang" >&2
clang_dir=$top/build-clang
# Only mvm and the host test programs: the test guests come from the gcc build.
clang_targets=(mvm $(cd "$top/tests" && ls unit/test_*.c kvm/test_*.c | sed 's|.*/||; s|\.c$||'))
if ! { cmake -S "$top" -B "$clang_dir" -DCMAKE_C_COMPILER=clang -DMVM_WERROR=ON &&
	cmake --build "$clang_dir" -j"$jobs" --target "${clang_targets[@]}"; } \
	>"$clang_dir.build.log" 2>&1; then
	grep -E "error|warning|\*\*\*" "$clang_dir.build.log" | head -n 30 >&2
	echo "test: the clang build failed (full log: $clang_dir.build.log)" >&2
	exit 1
fi
echo "test: building the fuzz targets with clang" >&2
fuzz_dir=$top/build-fuzz
fuzz_targets=($(cd "$top/tests/fuzz" && ls fuzz_*.c | sed 's|\.c$||'))
if ! { cmake -S "$top" -B "$fuzz_dir" -DCMAKE_C_COMPILER=clang -DMVM_FUZZ=ON -DMVM_WERROR=ON &&
	cmake --build "$fuzz_dir" -j"$jobs" --target "${fuzz_targets[@]}"; } \
	>"$fuzz_dir.build.log" 2>&1; then
	grep -E "error|warning|\*\*\*" "$fuzz_dir.build.log" | head -n 30 >&2
	echo "test: the fuzz build failed (full log: $fuzz_dir.build.log)" >&2
	exit 1
fi
# A kernel or initramfs that cannot be built fails the run (eval alone would hide the status,
# and every Linux test would then skip).
if ! images=$("$top/scripts/guest-images.sh"); then
	echo "test: the guest kernel or initramfs could not be built (scripts/guest-images.sh)" >&2
	exit 1
fi
eval "$images"
export MVM_VMLINUX MVM_BZIMAGE MVM_INITRAMFS

status=0
echo "test: running the suite" >&2
ctest --test-dir "$top/build" --output-on-failure -j"$jobs" || status=1
# The kvm tier and the e2e tests on test guests too: mvm's devices, engine and exits under
# ASan. Not Linux boots (minutes each on KVM-PVM), nor seccomp and jail tests: seccomp is off
# in a sanitizer build (its runtime makes calls no allow-list has), and they check it is on.
echo "test: running unit, kvm and e2e tests (not Linux) under ASan+UBSan" >&2
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir "$top/build-asan" --output-on-failure -j"$jobs" \
	-L 'unit|sanitize|kvm|e2e|dbt' -LE 'qemu|linux' -E '/(seccomp|jail)-' || status=1
echo "test: running the threaded unit tests under ThreadSanitizer" >&2
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir "$tsan_dir" --output-on-failure -j"$jobs" \
	-R "^unit/($(IFS='|'; echo "${tsan_tests[*]}"))\$" || status=1
echo "test: running the unit tests built with clang" >&2
ctest --test-dir "$clang_dir" --output-on-failure -j"$jobs" -L unit -LE qemu || status=1
# Short in CI (tests/fuzz/README.md has the long runs). Each target starts from its committed
# seeds (tests/fuzz/corpus/TARGET) and keeps what it finds in build-fuzz/corpus-NAME; a crash
# leaves its input as crash-* in build-fuzz. -close_fd_mask=2: mvm's own log lines go to
# /dev/null, libFuzzer's and the sanitizers' reports do not.
for t in "${fuzz_targets[@]}"; do
	seeds=()
	[ -d "$top/tests/fuzz/corpus/$t" ] && seeds=("$top/tests/fuzz/corpus/$t")
	echo "test: fuzzing $t for ${MVM_FUZZ_SECONDS:-20} s" >&2
	mkdir -p "$fuzz_dir/corpus-${t#fuzz_}"
	(cd "$fuzz_dir" && "$fuzz_dir/tests/fuzz/$t" -max_total_time="${MVM_FUZZ_SECONDS:-20}" \
		-rss_limit_mb=2048 -close_fd_mask=2 -print_final_stats=1 "corpus-${t#fuzz_}" \
		"${seeds[@]}") 2>&1 | tail -n 12 || status=1
done
exit $status
