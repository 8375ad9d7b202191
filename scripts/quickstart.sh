#!/usr/bin/env bash
# quickstart.sh: from a fresh Debian 12 machine (as root) to the default guest's console:
# installs the Debian packages, builds mvm, builds or reuses the guest kernel and initramfs,
# and boots them with `mvm run --accel auto` (the fastest accelerator on this host). Extra arguments are added to mvm run (e.g. -c 2 -m 512M).
# On a terminal the guest's /init starts a shell; `exit` there (or Ctrl-A x) ends the VM with
# status 0. Without a terminal (a serial line has no end-of-file to pass on) the guest runs a
# short demonstration command instead and reboots, so the command always returns.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/deps.sh" build kernel
echo "quickstart: building mvm" >&2
"$top/scripts/build.sh"
eval "$("$top/scripts/guest-images.sh")"
cmdline="console=ttyS0 reboot=k panic=-1"
if [[ ! -t 0 ]]; then
	cmdline+=' mvm.run="uname -a; grep -m1 model /proc/cpuinfo; ls /dev; echo hello from the mvm guest"'
fi
echo "quickstart: booting $MVM_VMLINUX (PVH) with $MVM_INITRAMFS" >&2
# --accel auto: KVM where it runs guest kernels natively, mvm's engine on KVM-PVM hosts (which
# interpret them) and without /dev/kvm; MVM_LOG=info says which and why.
exec "$top/build/mvm" run --accel auto -k "$MVM_VMLINUX" -i "$MVM_INITRAMFS" -p "$cmdline" "$@"
