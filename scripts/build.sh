#!/usr/bin/env bash
# build.sh: configure and build mvm into build/ (or $MVM_BUILD_DIR).
# Extra arguments go to cmake's configure step, e.g. -DMVM_SANITIZE=ON.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${MVM_BUILD_DIR:-$top/build}
werror=OFF
[[ ${CI:-} == true ]] && werror=ON
cmake -S "$top" -B "$dir" -DMVM_WERROR=$werror "$@" >"$dir.configure.log" 2>&1 || {
	cat "$dir.configure.log" >&2
	echo "build: cmake configure failed (log above)" >&2
	exit 1
}
if ! cmake --build "$dir" -j"$(nproc)" >"$dir.build.log" 2>&1; then
	grep -E "error|\*\*\*" "$dir.build.log" | head -n 30 >&2
	echo "build: compilation failed (full log: $dir.build.log)" >&2
	exit 1
fi
