#!/usr/bin/env bash
# build.sh: build the mvm test initramfs: Debian's static busybox plus our
# /init, as an UNCOMPRESSED newc cpio (unpacking gzip costs ~114 s/MB of
# interpreted guest kernel code on our KVM-PVM hosts, see KVM-HOST.md).
#
# Usage: build.sh [--print-path]
#
# Output contract: progress goes to stderr; the last line of stdout is
#   initramfs=<absolute path>
# --print-path prints that line if the archive is cached, else exits 1.
#
# The archive is ${MVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mvm}/
# initramfs-<key>.cpio, <key> hashing init, this script, mkcpio.py,
# vsock_test.c, the busybox-static package version and gcc's version. It is renamed into place only when
# complete, so its existence means it is good.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=/bin/busybox
pkg='busybox-static'
cache_root=$(realpath -m -- "${MVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mvm}")

# Applets linked into /bin. Each symlink costs guest kernel work at unpack
# time, so this is what tests use rather than all ~400 applets.
applets=(
	sh ash cttyhack setsid mount umount mdev sync reboot poweroff halt
	echo printf cat ls cp mv rm ln mkdir rmdir touch chmod mknod find xargs
	head tail grep sed awk cut tr sort uniq wc tee od hexdump dd cmp diff
	sha256sum md5sum seq sleep usleep time timeout nproc uname dmesg date
	env true false test '[' '[[' expr stty kill ps free df
	ip ifconfig route ping nc
)

log() { printf 'initramfs: %s\n' "$*" >&2; }
die() {
	printf 'initramfs: error: %s\n' "$*" >&2
	exit 1
}

compute_key() {
	local version
	version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) || return 1
	{
		cat "$here/init" "${BASH_SOURCE[0]}" "$here/mkcpio.py" "$here/vsock_test.c"
		printf '%s\n' "$version"
		gcc --version | head -n 1
	} | sha256sum | cut -c1-12
}

preflight() {
	local missing=()
	[[ -x $busybox ]] && dpkg-query -W "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
	command -v python3 >/dev/null || missing+=(python3)
	command -v cpio >/dev/null || missing+=(cpio)
	command -v gcc >/dev/null || missing+=(gcc)
	if ((${#missing[@]})); then
		log "missing: ${missing[*]}; install with:"
		log "  sudo apt-get install ${missing[*]}"
		exit 1
	fi
	# A dynamically linked busybox would need its libraries in the archive.
	if [[ $(LC_ALL=C readelf -l "$busybox" 2>/dev/null) == *"program interpreter"* ]]; then
		die "$busybox is dynamically linked; install busybox-static"
	fi
	# Read the list once: "busybox --list | grep -q" can die of SIGPIPE,
	# which pipefail would report as a missing applet.
	local a list
	list=$("$busybox" --list)
	for a in "${applets[@]}"; do
		grep -qxF -- "$a" <<<"$list" || die "$busybox has no '$a' applet"
	done
}

# The file list, in usr/gen_init_cpio format (see mkcpio.py).
cpio_list() {
	local d a
	for d in /bin /dev /proc /sys /tmp /mnt /etc /root; do
		echo "dir $d 0755 0 0"
	done
	# The kernel opens /dev/console for init's stdio before anything can
	# mount devtmpfs, so the node must be in the archive.
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "nod /dev/null 0666 0 0 c 1 3"
	echo "file /init $here/init 0755 0 0"
	echo "file /bin/busybox $busybox 0755 0 0"
	# The AF_VSOCK client and server of the vsock tests (busybox has none).
	echo "file /bin/vsock_test $vsock_test 0755 0 0"
	for a in "${applets[@]}"; do
		echo "slink /bin/$a busybox 0777 0 0"
	done
	# busybox's init-related applets and scripts look for these.
	echo "slink /sbin bin 0777 0 0"
	echo "file /etc/passwd /dev/null 0644 0 0"
}

# The archive must hold what the kernel and /init need to start.
check_archive() {
	local listing f
	listing=$(cpio -t --quiet <"$1") || die "cpio cannot read $1"
	for f in init bin/busybox bin/sh bin/vsock_test dev/console; do
		grep -qxF "$f" <<<"$listing" || die "$1 lacks /$f"
	done
}

main() {
	local key out tmp
	case ${1:-} in
	--print-path)
		key=$(compute_key) || exit 1
		out=$cache_root/initramfs-$key.cpio
		[[ -e $out ]] || exit 1
		echo "initramfs=$out"
		exit 0 ;;
	"") ;;
	-h | --help)
		sed -n '2,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		exit 0 ;;
	*) die "unknown argument '$1' (try --help)" ;;
	esac

	key=$(compute_key) || { preflight; die "cannot read the version of $pkg"; }
	out=$cache_root/initramfs-$key.cpio
	if [[ -e $out ]]; then
		log "up to date: $out"
		echo "initramfs=$out"
		return
	fi

	preflight
	mkdir -p "$cache_root"
	tmp=$(mktemp "$out.tmp.XXXXXX")
	trap 'rm -f "$tmp"' EXIT
	log "writing $out"
	vsock_test=$tmp.vsock_test
	trap 'rm -f "$tmp" "$vsock_test"' EXIT
	# Static: the archive has no C library. -s: ~700 KiB instead of ~800.
	gcc -static -Os -s -Wall -Wextra -Werror -o "$vsock_test" "$here/vsock_test.c" ||
		die "cannot build vsock_test.c (needs gcc and the static C library, libc6-dev)"
	cpio_list | python3 "$here/mkcpio.py" "$tmp"
	rm -f "$vsock_test"
	check_archive "$tmp"
	chmod 0644 "$tmp"
	mv "$tmp" "$out"
	trap - EXIT
	log "done: $(($(stat -c %s "$out") / 1024)) KiB, ${#applets[@]} applets"
	echo "initramfs=$out"
}

main "$@"
