#!/usr/bin/env bash
# test_initramfs.sh: build the initramfs into a scratch cache and check the
# output contract and the archive contents with cpio -t.
# Exit 0 pass, 1 fail, 77 skip (busybox-static, python3 or cpio missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in /bin/busybox python3 cpio; do
	command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done

export MVM_CACHE_DIR
MVM_CACHE_DIR=$(mktemp -d)
trap 'rm -rf "$MVM_CACHE_DIR"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}

"$here/build.sh" --print-path >/dev/null && fail "--print-path succeeded on an empty cache"

out=$("$here/build.sh" 2>/dev/null) || fail "build.sh failed"
last=$(tail -n 1 <<<"$out")
[[ $last == initramfs=/* ]] || fail "last stdout line is not initramfs=<absolute path>: [$last]"
cpio=${last#initramfs=}
[[ -f $cpio ]] || fail "$cpio does not exist"
[[ $("$here/build.sh" --print-path) == "$last" ]] || fail "--print-path disagrees with build.sh"
[[ $("$here/build.sh" 2>/dev/null | tail -n 1) == "$last" ]] || fail "a second run gave another path"

# Uncompressed newc: the magic is at offset 0, not a gzip header.
[[ $(head -c 6 "$cpio") == 070701 ]] || fail "$cpio is not an uncompressed newc archive"

listing=$(cpio -tv --quiet <"$cpio")
names=$(cpio -t --quiet <"$cpio")
for f in init bin/busybox bin/sh bin/mount bin/reboot bin/cttyhack dev/console dev/null proc sys tmp mnt etc; do
	grep -qxF "$f" <<<"$names" || fail "archive lacks /$f"
done
grep -q '^crw.* 5, *1 .* dev/console$' <<<"$listing" || fail "/dev/console is not char 5:1"
grep -q '^crw.* 1, *3 .* dev/null$' <<<"$listing" || fail "/dev/null is not char 1:3"
grep -q '^-rwxr-xr-x .* init$' <<<"$listing" || fail "/init is not an executable file"
grep -q '^lrwxrwxrwx .* bin/sh -> busybox$' <<<"$listing" || fail "/bin/sh is not a link to busybox"
echo "initramfs build and contents OK ($(grep -c . <<<"$names") entries)"
