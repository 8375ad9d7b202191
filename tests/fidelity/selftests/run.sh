#!/bin/sh
# run.sh: runs every program of the x86 selftests image inside the guest, one at a time, each
# with a time limit. Prints "SELFTEST-BEGIN <name>", the program's last lines, then
# "SELFTEST <name> <exit status>" (0 pass, 4 skip as kselftest.h says, 124 timed out, 128+N
# killed by signal N), and "SELFTESTS-DONE" at the end. Arguments: seconds per program, then
# the names of programs to leave out (the host restarts the guest after one stopped the VM).
limit=${1:-120}
[ $# -gt 0 ] && shift
cd /tmp || exit 1
for p in "$(dirname "$0")"/bin/*_64; do
	name=${p##*/}
	case " $* " in *" $name "*) continue ;; esac
	echo "SELFTEST-BEGIN $name"
	timeout "$limit" "$p" >/tmp/out 2>&1
	status=$?
	tail -n 4 /tmp/out | sed 's/^/  | /'
	echo "SELFTEST $name $status"
done
echo "SELFTESTS-DONE"
