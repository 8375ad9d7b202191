#!/bin/sh
# syscall_names.sh CC OUT: writes OUT, one "[__NR_x] = "x"," initializer per system call the C
# compiler's <asm/unistd.h> defines, so the SIGSYS handler can name a call without libseccomp
# (whose lookup allocates).
set -e
cc=$1
out=$2
echo '#include <asm/unistd.h>' | "$cc" -E -dM -x c - |
	sed -n 's/^#define __NR_\([a-z0-9_]*\) .*/\1/p' | sort -u |
	awk '{ printf "[__NR_%s] = \"%s\",\n", $1, $1 }' >"$out.tmp"
mv "$out.tmp" "$out"
