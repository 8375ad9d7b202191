#!/usr/bin/env bash
# deps.sh: install the Debian 12 packages mvm needs, or say exactly what to run.
#
# Usage: scripts/deps.sh [build|kernel|test]...   (default: all of them)
#   build   compiling mvm and its test guests (gcc, and clang for the second build in test.sh;
#           jansson and libmicrohttpd for the Firecracker API)
#   kernel  building the guest Linux kernel and initramfs from Debian sources
#   test    the test suite's extra tools (QEMU for the TCG cross-check, iproute2 for
#           network namespaces, e2fsprogs for the ext4 disk test, util-linux for setpriv,
#           curl as the Firecracker API client)
# Already-installed packages cost nothing: apt is only called for what is missing.
set -euo pipefail

build_pkgs=(build-essential clang cmake pkg-config liburing-dev libseccomp-dev libzydis-dev python3
	libjansson-dev libmicrohttpd-dev)
kernel_pkgs=(linux-source-6.1 flex bison bc libelf-dev libssl-dev cpio xz-utils lz4 perl
	busybox-static)
test_pkgs=(qemu-system-x86 iproute2 e2fsprogs util-linux curl)

want=()
[[ $# -eq 0 ]] && set -- build kernel test
for group in "$@"; do
	case $group in
	build) want+=("${build_pkgs[@]}") ;;
	kernel) want+=("${kernel_pkgs[@]}") ;;
	test) want+=("${test_pkgs[@]}") ;;
	*) echo "deps: unknown group '$group' (build, kernel, test)" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${want[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
	>/tmp/mvm-apt.log 2>&1; then
	tail -n 20 /tmp/mvm-apt.log >&2
	echo "deps: apt-get failed (full log: /tmp/mvm-apt.log); check the network to the" \
		"Debian mirror and free disk space, then run this again" >&2
	exit 1
fi
