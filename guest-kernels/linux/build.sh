#!/usr/bin/env bash
# build.sh: build the mvm guest kernel (vmlinux for PVH boot, bzImage for the
# Linux boot protocol) from Debian's linux-source-6.1, cached outside the repo.
#
# Usage: build.sh [--print-paths]
#
# Output contract (parsed by other scripts): all progress goes to stderr; the
# last two lines of stdout are exactly
#   bzImage=<absolute path>
#   vmlinux=<absolute path>
# --print-paths prints those two lines if the cache is complete, else exits 1.
#
# Cache layout under ${MVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mvm}:
#   src-<version>/    the extracted source tree, shared by every key
#   linux-<key>/      one build: bzImage, vmlinux, config, System.map, build.log
#                     and .complete, written last; obj/ holds the objects
#                     while building and is deleted after success.
# <key> hashes config.fragment, the linux-source package version and this
# script, so changing any of them gives a fresh build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment=$here/config.fragment
tarball=/usr/src/linux-source-6.1.tar.xz
pkg=linux-source-6.1
cache_root=$(realpath -m -- "${MVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mvm}")
need_kb=$((3 * 1024 * 1024)) # objects + extracted source, with margin

# Must be =y in the final .config. Kept separate from the fragment on purpose:
# this is what the VMM and the tests rely on, whatever the fragment says.
must_have=(
	64BIT SMP X86_MPPARSE
	HYPERVISOR_GUEST PARAVIRT PVH KVM_GUEST PARAVIRT_CLOCK
	PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE
	VIRTIO VIRTIO_MMIO VIRTIO_MMIO_CMDLINE_DEVICES VIRTIO_BLK VIRTIO_NET
	VIRTIO_CONSOLE HW_RANDOM HW_RANDOM_VIRTIO VIRTIO_BALLOON
	NET NET_CORE NETDEVICES UNIX INET VSOCKETS VIRTIO_VSOCKETS
	BLOCK EXT4_FS DEVTMPFS DEVTMPFS_MOUNT BLK_DEV_INITRD RD_GZIP
	PROC_FS SYSFS TMPFS SHMEM
	BINFMT_ELF BINFMT_SCRIPT FUTEX EPOLL POSIX_TIMERS MULTIUSER
	IA32_EMULATION
)
# Must NOT be set: ACPI would hide the MP table, modules have no place to
# load from, a built-in command line would override the VMM's, KASLR makes
# guest addresses unpredictable.
must_not_have=(ACPI MODULES CMDLINE_BOOL CMDLINE RANDOMIZE_BASE XEN)

log() { printf 'linux: %s\n' "$*" >&2; }
die() {
	printf 'linux: error: %s\n' "$*" >&2
	exit 1
}

pkg_version() { dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null; }

# Short hash of everything that determines the result.
compute_key() {
	local version
	version=$(pkg_version) || return 1
	{ cat "$fragment"; printf '%s\n' "$version"; cat "${BASH_SOURCE[0]}"; } |
		sha256sum | cut -c1-12
}

print_paths() {
	printf 'bzImage=%s\n' "$out/bzImage"
	printf 'vmlinux=%s\n' "$out/vmlinux"
}

# Collect every missing tool so the user gets one apt-get line, not a loop.
preflight() {
	local missing=() tool
	for tool in make:make gcc:gcc ld:binutils flex:flex bison:bison bc:bc \
		perl:perl tar:tar xz:xz-utils lz4:lz4 sha256sum:coreutils \
		flock:util-linux dpkg-query:dpkg; do
		command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
	done
	# objtool, built during every x86_64 kernel build, needs libelf.
	[[ -e /usr/include/gelf.h ]] || missing+=(libelf-dev)
	[[ -r $tarball ]] || missing+=("$pkg")
	if ((${#missing[@]})); then
		log "missing build dependencies: ${missing[*]}"
		log "install them with:"
		log "  sudo apt-get install ${missing[*]}"
		exit 1
	fi
}

check_disk() {
	local avail_kb
	mkdir -p "$cache_root"
	avail_kb=$(df -Pk "$cache_root" | awk 'NR == 2 { print $4 }')
	((avail_kb >= need_kb)) ||
		die "only $((avail_kb / 1024)) MiB free in $cache_root; the build needs ~3 GiB." \
			"Free some space or point MVM_CACHE_DIR at a bigger disk."
}

# Run "$@" with its output appended to the build log, showing a one-line
# progress indicator (objects built so far) instead of make's output.
run_logged() {
	local what=$1 pid start now n last=0
	shift
	log "$what"
	printf '\n=== %s: %s\n' "$what" "$*" >>"$buildlog"
	start=$SECONDS
	"$@" >>"$buildlog" 2>&1 &
	pid=$!
	# Asynchronous jobs ignore SIGINT in a script: stop make ourselves.
	trap 'kill "$pid" 2>/dev/null; exit 130' INT TERM
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		now=$((SECONDS - start))
		n=$(grep -c '^  \(CC\|AS\|LD\|AR\|HOSTCC\|OBJCOPY\)' "$buildlog" || true)
		if [[ -t 2 ]]; then # redraw one line in place
			printf '\r  %d:%02d  %d objects' $((now / 60)) $((now % 60)) "$n" >&2
		elif ((now - last >= 30)); then # logs and pipes: a line every 30 s
			last=$now
			printf '  %d:%02d  %d objects\n' $((now / 60)) $((now % 60)) "$n" >&2
		fi
	done
	if [[ -t 2 ]]; then printf '\r\033[K' >&2; fi
	trap - INT TERM
	wait "$pid" || fail "$what"
}

fail() {
	log "FAILED: $1; last lines of $buildlog:"
	tail -n 30 "$buildlog" | sed 's/^/  | /' >&2
	log "Fix the cause above (often a missing package: apt-get install it) and"
	log "rerun $0; the build resumes where it stopped. Full log: $buildlog"
	exit 1
}

# Extract the tarball once per package version; rename into place only when
# complete so a killed extraction is never mistaken for a tree.
extract_source() {
	local tmp
	if [[ -e $src/.mvm-extracted ]]; then
		log "source: $src (cached)"
		return
	fi
	rm -rf "$cache_root"/src-*.tmp.* # leftovers of killed runs (we hold the lock)
	tmp=$(mktemp -d "$src.tmp.XXXXXX")
	log "extracting $tarball (once per package version)"
	tar -xJf "$tarball" -C "$tmp" --strip-components=1 ||
		die "extracting $tarball failed (disk full?)"
	chmod 0755 "$tmp" # mktemp made it private
	touch "$tmp/.mvm-extracted"
	rm -rf "$src"
	mv "$tmp" "$src"
}

# Fail naming every requested symbol that Kconfig dropped (usually because a
# dependency is missing from config.fragment).
check_config() {
	local config=$1 sym line name missing=() unwanted=() ignored=()
	for sym in "${must_have[@]}"; do
		grep -qx "CONFIG_$sym=y" "$config" || missing+=("CONFIG_$sym")
	done
	for sym in "${must_not_have[@]}"; do
		grep -q "^CONFIG_$sym=" "$config" && unwanted+=("CONFIG_$sym")
	done
	# Every line of the fragment must have taken effect as written.
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			grep -qxF "$line" "$config" || ignored+=("$line") ;;
		"# CONFIG_"*" is not set")
			name=${line#\# }
			name=${name%% *}
			grep -q "^$name=" "$config" && ignored+=("$line") ;;
		esac
	done <"$fragment"
	((${#missing[@]} + ${#unwanted[@]} + ${#ignored[@]} == 0)) && return 0
	((${#missing[@]})) && log "required options not =y: ${missing[*]}"
	((${#unwanted[@]})) && log "options that must stay off are set: ${unwanted[*]}"
	((${#ignored[@]})) && log "fragment lines Kconfig did not apply: ${ignored[*]}"
	log "Add the missing dependencies to $fragment (see the 'depends on'"
	log "lines in the Kconfig files, or 'make O=$obj menuconfig'). Config: $config"
	exit 1
}

# The PVH entry point is advertised by the XEN_ELFNOTE_PHYS32_ENTRY note
# (type 18); without it a PVH loader cannot boot vmlinux.
check_pvh_note() {
	local notes
	notes=$(LC_ALL=C readelf -n "$1")
	grep -q 'Xen.*0x00000012\|XEN_ELFNOTE_PHYS32_ENTRY' <<<"$notes" ||
		die "$1 has no Xen PHYS32_ENTRY (PVH) ELF note; is CONFIG_PVH set?"
}

main() {
	local key print_only=0
	case ${1:-} in
	--print-paths) print_only=1 ;;
	"") ;;
	-h | --help)
		sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		exit 0 ;;
	*) die "unknown argument '$1' (try --help)" ;;
	esac

	if ((print_only)); then
		key=$(compute_key) || exit 1
		out=$cache_root/linux-$key
		[[ -e $out/.complete && -f $out/bzImage && -f $out/vmlinux ]] || exit 1
		print_paths
		exit 0
	fi

	# A complete cache needs nothing but dpkg-query, so check it first.
	key=$(compute_key) || { preflight; die "cannot read the version of $pkg"; }
	version=$(pkg_version)
	out=$cache_root/linux-$key
	src=$cache_root/src-${version//[:\/]/_}
	obj=$out/obj
	buildlog=$out/build.log

	if [[ ! -e $out/.complete ]]; then
		mkdir -p "$cache_root"
		# One build at a time per cache: two make runs on 2 cores only fight.
		exec 9>"$cache_root/.linux-build.lock"
		flock -n 9 || { log "waiting for another build in $cache_root"; flock 9; }
	fi
	# Check again under the lock: the other build may have produced our key.
	if [[ -e $out/.complete ]]; then
		log "up to date: $out"
		print_paths
		return
	fi

	preflight
	check_disk
	local t0=$SECONDS
	log "building Linux $version (key $key) in $out"
	extract_source
	mkdir -p "$obj"
	: >"$buildlog"
	local kmake=(make -C "$src" O="$obj" ARCH=x86_64)

	run_logged "configure: tinyconfig" "${kmake[@]}" tinyconfig
	# merge_config.sh puts its temporary files in the current directory.
	run_logged "configure: merge config.fragment" env -C "$obj" \
		"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$fragment"
	run_logged "configure: olddefconfig" "${kmake[@]}" olddefconfig
	check_config "$obj/.config"
	log "config check passed (${#must_have[@]} required options)"

	run_logged "compile: vmlinux bzImage (-j$(nproc), ~2.5 min on 2 cores)" \
		"${kmake[@]}" -j"$(nproc)" vmlinux bzImage

	log "install: $out"
	check_pvh_note "$obj/vmlinux"
	# No debug info is built; --strip-debug keeps the symbol table for
	# addr2line/nm when debugging the VMM.
	strip --strip-debug -o "$out/vmlinux.tmp" "$obj/vmlinux"
	cp "$obj/arch/x86/boot/bzImage" "$out/bzImage.tmp"
	cp "$obj/.config" "$out/config"
	cp "$obj/System.map" "$out/System.map"
	mv "$out/vmlinux.tmp" "$out/vmlinux"
	mv "$out/bzImage.tmp" "$out/bzImage"
	sync
	touch "$out/.complete" # only now is the build taken as done
	rm -rf "$obj"
	log "done in $(((SECONDS - t0) / 60))m$(((SECONDS - t0) % 60))s"
	print_paths
}

main "$@"
