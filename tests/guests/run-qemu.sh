#!/bin/sh
# run-qemu.sh: runs one freestanding test guest under QEMU (microvm, TCG by default) and checks
# its serial output and exit status. Separates guest bugs from mvm bugs: every guest must pass
# here before its result under mvm means anything.
#
# Usage: run-qemu.sh [options] GUEST.elf
#   --exit N        expected guest exit code (written to port 0xf4); QEMU's isa-debug-exit
#                   turns it into status (N << 1) | 1. Default 0.
#   --shutdown      expect a triple fault instead: QEMU with -no-reboot exits with status 0.
#   --expect TEXT   a line containing TEXT must appear (repeatable).
#   --reject TEXT   no line may contain TEXT (repeatable).
#   --no-result     do not require "RESULT PASS" (guests that exit without it).
#   --stdin TEXT    write TEXT and a newline to QEMU's stdin (the guest's serial input).
#   --append TEXT   kernel command line.
#   --smp N         CPUs (default 1).      --mem MIB   RAM (default 128).
#   --timeout S     wall-clock limit (default 30).
#   --accel A       tcg (default, with -cpu max: every extension TCG has) or kvm (then
#                   -cpu host,-arch-capabilities: QEMU 7.2 aborts on MSR 0x10a on our KVM-PVM
#                   hosts otherwise).
#   --blk SPEC      a virtio-blk-device on a fresh sparse raw image (repeatable). SPEC is
#                   SIZE_MIB[:ro][:serial=ID]. Switches the machine to acpi=off, so QEMU puts
#                   virtio_mmio.device=512@ADDR:IRQ on the command line (one IOAPIC, IRQs 5+),
#                   and the transports to virtio-mmio version 2 (force-legacy=false).
#                   QEMU fills its transports from the top address down and lists them in
#                   that order: the first --blk is the guest's first device.
# Always: no line may start with "FAIL " or "EXCEPTION ".
# Exit: 0 pass, 1 fail, 77 skip (qemu-system-x86_64 not installed; a failure instead with
# MVM_REQUIRE_KVM=1).
set -u

qemu=${QEMU:-qemu-system-x86_64}
want_exit=0 shutdown=0 need_result=1 stdin_text='' have_stdin=0 append='' smp=1 mem=128
timeout_s=30 accel=tcg
expects='' rejects='' blks=''
nl='
'

while [ $# -gt 1 ]; do
	case $1 in
	--exit) want_exit=$2; shift 2 ;;
	--shutdown) shutdown=1; shift ;;
	--expect) expects="$expects$2$nl"; shift 2 ;;
	--reject) rejects="$rejects$2$nl"; shift 2 ;;
	--no-result) need_result=0; shift ;;
	--stdin) stdin_text=$2; have_stdin=1; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--accel) accel=$2; shift 2 ;;
	--blk) blks="$blks$2$nl"; shift 2 ;;
	*) echo "run-qemu.sh: unknown option $1" >&2; exit 1 ;;
	esac
done
[ $# -eq 1 ] || { echo "usage: run-qemu.sh [options] GUEST.elf" >&2; exit 1; }
elf=$1

if ! command -v "$qemu" >/dev/null 2>&1; then
	why="$qemu not installed (Debian: qemu-system-x86)"
	# As tests/harness/test.h t_skip(): CI (MVM_REQUIRE_KVM=1) may not pass by skipping.
	if [ "${MVM_REQUIRE_KVM:-}" = 1 ]; then
		echo "FAIL (skip not allowed with MVM_REQUIRE_KVM=1): $why"
		exit 1
	fi
	echo "SKIP: $why"
	exit 77
fi
if [ ! -f "$elf" ]; then
	echo "FAIL: $elf does not exist (build the guests first)"
	exit 1
fi

cpu=
case $accel in
tcg) cpu="-cpu max" ;; # every extension TCG has: the emulate guest's classes run, not SKIP
kvm) cpu="-cpu host,-arch-capabilities" ;;
*) echo "run-qemu.sh: unknown accelerator $accel" >&2; exit 1 ;;
esac

out=$(mktemp) || exit 1
tmpdir=$(mktemp -d) || exit 1
trap 'rm -f "$out"; rm -rf "$tmpdir"' EXIT

machine=microvm
blk_args=
if [ -n "$blks" ]; then
	machine=microvm,acpi=off
	blk_args="-global virtio-mmio.force-legacy=false"
	n=0
	old_ifs=$IFS
	IFS=$nl
	for spec in $blks; do
		IFS=$old_ifs
		size=${spec%%:*}
		ro='' serial=''
		case $spec in *:ro*) ro=,readonly=on ;; esac
		case $spec in *:serial=*) serial=",serial=${spec##*:serial=}" ;; esac
		truncate -s "${size}M" "$tmpdir/blk$n.img" || exit 1
		blk_args="$blk_args -drive if=none,id=blk$n,format=raw,file=$tmpdir/blk$n.img$ro"
		blk_args="$blk_args -device virtio-blk-device,drive=blk$n$serial"
		n=$((n + 1))
	done
	IFS=$old_ifs
fi

# shellcheck disable=SC2086 # $cpu and $blk_args are word lists on purpose
run_qemu() {
	timeout -k 5 "$timeout_s" "$qemu" -M "$machine" -accel "$accel" $cpu -m "$mem" \
		-smp "$smp" -nographic -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4 \
		$blk_args -kernel "$elf" -append "$append"
}

if [ $have_stdin = 1 ]; then
	printf '%s\n' "$stdin_text" | run_qemu >"$out" 2>&1
else
	run_qemu </dev/null >"$out" 2>&1
fi
status=$?
# The UART output has CRLF line ends.
tr -d '\r' <"$out" >"$out.lf" && mv "$out.lf" "$out"

echo "--- $elf (qemu -accel $accel -smp $smp -m $mem, append '$append'): status $status"
cat "$out"
echo "---"

fail=0
if [ $status -eq 124 ] || [ $status -eq 137 ]; then
	echo "FAIL: timed out after ${timeout_s}s"
	fail=1
elif [ $shutdown = 1 ]; then
	if [ $status -ne 0 ]; then
		echo "FAIL: expected a triple-fault shutdown (status 0), got $status"
		fail=1
	fi
else
	want_status=$(( (want_exit << 1 | 1) & 255 ))
	if [ $status -ne $want_status ]; then
		echo "FAIL: expected exit code $want_exit (QEMU status $want_status), got status $status"
		fail=1
	fi
fi

if grep -q -e '^FAIL ' -e '^EXCEPTION ' "$out"; then
	echo "FAIL: the guest reported a failure or an exception"
	fail=1
fi
if [ $need_result = 1 ] && ! grep -qx 'RESULT PASS' "$out"; then
	echo "FAIL: no 'RESULT PASS' line"
	fail=1
fi

old_ifs=$IFS
IFS=$nl
for e in $expects; do
	if ! grep -qF -- "$e" "$out"; then
		echo "FAIL: missing expected output: $e"
		fail=1
	fi
done
for r in $rejects; do
	if grep -qF -- "$r" "$out"; then
		echo "FAIL: unexpected output: $r"
		fail=1
	fi
done
IFS=$old_ifs

[ $fail = 0 ] && echo "PASS"
exit $fail
