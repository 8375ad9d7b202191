#!/usr/bin/env bash
# test_cmdline.sh: unit test of the mvm.run= parsing in init (mvm_cmdline_get),
# run under busybox sh as in the guest, on fake command lines.
# Exit 0 pass, 1 fail, 77 skip (no busybox).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || { echo "SKIP: no $busybox (apt-get install busybox-static)"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect CMDLINE WANT: WANT is the expected value, or ABSENT when
# mvm_cmdline_get must return 1.
expect() {
	local cmdline=$1 want=$2 got status=0
	# /proc/cmdline ends with a newline; keep that in the fake.
	printf '%s\n' "$cmdline" >"$tmp/cmdline"
	# shellcheck disable=SC2016 # $1 is expanded by the inner busybox sh
	got=$(MVM_CMDLINE_FILE=$tmp/cmdline MVM_INIT_NO_MAIN=1 "$busybox" sh -c \
		'. "$1" && mvm_cmdline_get mvm.run' sh "$here/init") || status=$?
	if ((status == 1)); then
		got=ABSENT
	elif ((status != 0)); then
		got="exit status $status"
	fi
	if [[ $got == "$want" ]]; then
		echo "ok   [$cmdline]"
	else
		echo "FAIL [$cmdline]: want [$want], got [$got]"
		failures=$((failures + 1))
	fi
}

expect 'console=ttyS0 mvm.run="echo hello; uname -a" panic=-1' 'echo hello; uname -a'
expect 'console=ttyS0 mvm.run=true quiet' 'true'
expect 'console=ttyS0 quiet' ABSENT
expect '' ABSENT
expect 'mvm.run="at start" console=ttyS0' 'at start'
expect 'console=ttyS0 mvm.run="at end"' 'at end'
expect 'console=ttyS0 mvm.run=unquoted-at-end' 'unquoted-at-end'
expect 'mvm.run=alone' 'alone'
expect 'console=ttyS0 "mvm.run=whole arg quoted" quiet' 'whole arg quoted'
expect 'console=ttyS0	mvm.run="tab before"   reboot=k' 'tab before'
expect 'a="x mvm.run=not-this" mvm.run=this' 'this'
expect 'mvm.run=first mvm.run="second one"' 'second one'
expect 'xmvm.run=no mvm.runx=no' ABSENT
expect 'mvm.run console=ttyS0' ABSENT
expect 'mvm.run= console=ttyS0' ''
expect 'mvm.run="" console=ttyS0' ''
expect 'mvm.run="a=b c=d" e=f' 'a=b c=d'
expect "mvm.run=\"echo 'single' \$HOME *\" x" "echo 'single' \$HOME *"
expect 'console=ttyS0 -- mvm.run=init-argv' ABSENT
expect 'mvm.run=before -- mvm.run=after' 'before'
expect 'mvm.run="unterminated quote runs to the end' 'unterminated quote runs to the end'

if ((failures)); then
	echo "$failures test(s) failed"
	exit 1
fi
echo "all mvm.run parsing tests passed"
