#!/usr/bin/env bash
# build.sh: the Linux kernel's own x86 selftests (tools/testing/selftests/x86 of Debian's
# linux-source-6.1), built static for x86-64, on an ext4 image the default guest mounts.
# Prints "image=PATH" on stdout; progress on stderr. Cached in ~/.cache/mvm (or $MVM_CACHE)
# under a hash of the source tarball, this script and run.sh.
#
# The 64-bit programs the kernel's Makefile builds where no 32-bit toolchain exists (19), and
# ldt_gdt and ptrace_syscall, whose 64-bit builds the Makefile adds only with one: they are
# built the same way, with CAN_BUILD_32 defined, so their int 0x80 paths run too (the guest
# kernel has IA32_EMULATION).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_tar=${LINUX_SOURCE_TAR:-/usr/src/linux-source-6.1.tar.xz}
cache=${MVM_CACHE:-$HOME/.cache/mvm}
[ -f "$src_tar" ] || { echo "selftests: $src_tar missing (apt-get install linux-source-6.1)" >&2; exit 1; }
command -v mkfs.ext4 >/dev/null || { echo "selftests: mkfs.ext4 missing (e2fsprogs)" >&2; exit 1; }
key=$( (stat -c '%s %Y' "$src_tar"; cat "$0" "$here/run.sh") | sha256sum | cut -c1-12)
out=$cache/x86-selftests-$key
if [ -f "$out/selftests.img" ]; then
	echo "image=$out/selftests.img"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "selftests: extracting tools/testing/selftests/x86 from $src_tar" >&2
tar -xJf "$src_tar" -C "$tmp" --wildcards '*/tools/testing/selftests/x86/*' \
	'*/tools/testing/selftests/kselftest.h' '*/arch/x86/include/asm/desc_defs.h'
x86=$(echo "$tmp"/*/tools/testing/selftests/x86)
bothbits="single_step_syscall sysret_ss_attrs syscall_nt test_mremap_vdso check_initial_reg_state
	sigreturn iopl ioperm test_vsyscall mov_ss_trap sigtrap_loop syscall_arg_fault
	fsgsbase_restore sigaltstack"
only64="fsgsbase sysret_rip syscall_numbering corrupt_xstate_header amx"
needs32="ldt_gdt ptrace_syscall"
mkdir -p "$tmp/root/bin"
for t in $bothbits $only64 $needs32; do
	extra=() flags=()
	case $t in
	sysret_ss_attrs) extra=("$x86/thunks.S") ;;
	check_initial_reg_state) flags=(-Wl,-ereal_start) ;;
	esac
	case " $needs32 " in *" $t "*) flags+=(-DCAN_BUILD_32) ;; esac
	echo "selftests: cc $t" >&2
	gcc -m64 -static -no-pie -O2 -g0 -std=gnu99 -pthread -Wall -DCAN_BUILD_64 "${flags[@]}" \
		-o "$tmp/root/bin/${t}_64" "$x86/$t.c" "${extra[@]}" -lrt -ldl 2>"$tmp/cc.log" ||
		{ cat "$tmp/cc.log" >&2; echo "selftests: $t did not build" >&2; exit 1; }
done
cp "$here/run.sh" "$tmp/root/run.sh"
mkdir -p "$out"
truncate -s 64M "$tmp/selftests.img"
mkfs.ext4 -q -F -L x86-selftests -d "$tmp/root" "$tmp/selftests.img"
mv "$tmp/selftests.img" "$out/selftests.img"
echo "image=$out/selftests.img"
