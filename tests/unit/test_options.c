/* test_options.c: the command line, good and bad, and size parsing. */
#include "options.h"

#include <errno.h>
#include <stdarg.h>

#include "test.h"
#include "util/size.h"

static int parse(struct vm_config *cfg, char *err, const char *a0, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = "mvm";
	va_start(ap, a0);
	for (const char *a = a0; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return options_parse(argc, argv, cfg, err, 256);
}

#define P(...) parse(&cfg, err, __VA_ARGS__, NULL)

int main(void)
{
	struct vm_config cfg;
	char err[256];
	uint64_t v;

	/* Defaults. */
	CHECK_EQ(P("run", "-k", "vmlinux"), 0);
	CHECK_EQ(cfg.command, CMD_RUN);
	CHECK_STR(cfg.kernel, "vmlinux");
	CHECK_EQ(cfg.mem, 256ULL << 20);
	CHECK_EQ(cfg.cpus, 1);
	CHECK_EQ(cfg.console, CONSOLE_STDIO);
	CHECK_STR(cfg.cmdline, MVM_DEFAULT_CMDLINE);
	CHECK(cfg.initrd == NULL);

	/* Short and long forms, QEMU's --append. */
	CHECK_EQ(P("run", "-k", "k", "-i", "i", "-p", "console=ttyS0", "-m", "1G", "-c", "4",
		   "--console", "none"), 0);
	CHECK_STR(cfg.initrd, "i");
	CHECK_STR(cfg.cmdline, "console=ttyS0");
	CHECK_EQ(cfg.mem, 1ULL << 30);
	CHECK_EQ(cfg.cpus, 4);
	CHECK_EQ(cfg.console, CONSOLE_NONE);
	CHECK_EQ(P("run", "--kernel=k", "--initrd", "i", "--append", "x y", "--mem", "512",
		   "--cpus=2", "--console=file:/tmp/out"), 0);
	CHECK_STR(cfg.cmdline, "x y");
	CHECK_EQ(cfg.mem, 512ULL << 20);
	CHECK(cfg.mem_thp); /* default on */
	CHECK_EQ(cfg.console, CONSOLE_FILE);
	CHECK_STR(cfg.console_path, "/tmp/out");
	CHECK_EQ(P("run", "-k", "k", "--cmdline", ""), 0);
	CHECK_STR(cfg.cmdline, "");

	/* --stats. */
	CHECK_EQ(P("run", "-k", "k"), 0);
	CHECK(!cfg.stats);
	CHECK_EQ(P("run", "-k", "k", "--stats"), 0);
	CHECK(cfg.stats);

	/* --accel: KVM by default; dbt, hybrid, auto; anything else names the option. */
	CHECK_EQ(P("run", "-k", "k"), 0);
	CHECK_EQ(cfg.accel, ACCEL_KVM);
	CHECK_EQ(P("run", "-k", "k", "--accel", "dbt"), 0);
	CHECK_EQ(cfg.accel, ACCEL_DBT);
	CHECK_EQ(P("run", "-k", "k", "--accel=auto"), 0);
	CHECK_EQ(cfg.accel, ACCEL_AUTO);
	CHECK_EQ(P("run", "-k", "k", "--accel", "kvm"), 0);
	CHECK_EQ(cfg.accel, ACCEL_KVM);
	CHECK_EQ(P("run", "-k", "k", "--accel", "tcg"), -EINVAL);
	CHECK(strstr(err, "--accel") && strstr(err, "tcg"));
	/* --jail: UID:GID, never 0; the other --jail-* options need it. */
	CHECK_EQ(P("run", "-k", "k", "--jail", "1000:1001", "--jail-pidns", "--jail-cgroup",
		   "mvm/vm-1", "--jail-netns", "/var/run/netns/x", "--jail-nofile", "4096"), 0);
	CHECK(cfg.jail.on && cfg.jail.uid == 1000 && cfg.jail.gid == 1001 && cfg.jail.pidns);
	CHECK_STR(cfg.jail.cgroup, "mvm/vm-1");
	CHECK_STR(cfg.jail.netns, "/var/run/netns/x");
	CHECK_EQ(cfg.jail.nofile, 4096);
	CHECK_EQ(P("run", "-k", "k", "--jail", "0:5"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--jail", "5:0"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--jail", "5"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--jail", "5:x"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--jail", "-5:5"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--jail", "5:99999999999"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--jail-netns", "/x"), -EINVAL);
	CHECK(strstr(err, "need --jail"));
	for (unsigned int i = 0; i < 6; i++) {
		static const char *const bad[] = {"", "/abs", "a/../b", "a//b", "a/", "a b"};

		CHECK_EQ(P("run", "-k", "k", "--jail", "1:1", "--jail-cgroup", bad[i]), -EINVAL);
	}
	/* hybrid: one vCPU (user mode on one KVM vCPU). */
	CHECK_EQ(P("run", "-k", "k", "--accel", "hybrid"), 0);
	CHECK_EQ(cfg.accel, ACCEL_HYBRID);
	CHECK_EQ(P("run", "-k", "k", "--accel", "hybrid", "-c", "2"), -EINVAL);
	CHECK(strstr(err, "hybrid") && strstr(err, "one vCPU"));
	CHECK_EQ(P("run", "-k", "k", "--accel"), -EINVAL);

	/* --seccomp: on by default; log, off; anything else names the option. */
	CHECK_EQ(P("run", "-k", "k"), 0);
	CHECK_EQ(cfg.seccomp, SANDBOX_SECCOMP_ON);
	CHECK_EQ(P("run", "-k", "k", "--seccomp", "log"), 0);
	CHECK_EQ(cfg.seccomp, SANDBOX_SECCOMP_LOG);
	CHECK_EQ(P("run", "-k", "k", "--seccomp=off"), 0);
	CHECK_EQ(cfg.seccomp, SANDBOX_SECCOMP_OFF);
	CHECK_EQ(P("run", "-k", "k", "--seccomp", "on"), 0);
	CHECK_EQ(cfg.seccomp, SANDBOX_SECCOMP_ON);
	CHECK_EQ(P("run", "-k", "k", "--seccomp", "strict"), -EINVAL);
	CHECK(strstr(err, "--seccomp") && strstr(err, "strict"));

	/* Help and version. */
	CHECK_EQ(P("--help"), 0);
	CHECK_EQ(cfg.command, CMD_HELP);
	CHECK_EQ(P("--version"), 0);
	CHECK_EQ(cfg.command, CMD_VERSION);
	CHECK_EQ(P("run", "--help"), 0);
	CHECK_EQ(cfg.command, CMD_HELP);

	/* Bad input: each gets -EINVAL and a message naming the problem. */
	CHECK_EQ(parse(&cfg, err, NULL), -EINVAL);
	CHECK(strstr(err, "no command"));
	CHECK_EQ(P("start"), -EINVAL);
	CHECK(strstr(err, "start"));
	CHECK_EQ(P("run"), -EINVAL);
	CHECK(strstr(err, "no kernel"));
	CHECK_EQ(P("run", "-k", "k", "-m", "0"), -EINVAL);
	CHECK(strstr(err, "--mem"));
	CHECK_EQ(P("run", "-k", "k", "-m", "1T"), -EINVAL);
	CHECK(strstr(err, "outside"));
	CHECK_EQ(P("run", "-k", "k", "-m", "lots"), -EINVAL);
	CHECK(strstr(err, "not a size"));
	CHECK_EQ(P("run", "-k", "k", "-m", "1000000000000000000000G"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-m", "17000001B"), -EINVAL);
	CHECK(strstr(err, "4K"));
	/* -m SIZE[,thp=on|off] */
	CHECK_EQ(P("run", "-k", "k", "-m", "64M,thp=off"), 0);
	CHECK_EQ(cfg.mem, 64ULL << 20);
	CHECK(!cfg.mem_thp);
	CHECK_EQ(P("run", "-k", "k", "-m", "2G,thp=on"), 0);
	CHECK_EQ(cfg.mem, 2ULL << 30);
	CHECK(cfg.mem_thp);
	CHECK_EQ(P("run", "-k", "k", "-m", "64M,thp=maybe"), -EINVAL);
	CHECK(strstr(err, "unknown option 'thp=maybe'"));
	CHECK_EQ(P("run", "-k", "k", "-m", "64M,"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-m", ",thp=off"), -EINVAL);
	CHECK(strstr(err, "not a size"));
	CHECK_EQ(P("run", "-k", "k", "-m", "1T,thp=off"), -EINVAL);
	CHECK(strstr(err, "outside"));
	CHECK_EQ(P("run", "-k", "k", "-m", "123456789012345678901234567890123456789M"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-c", "0"), -EINVAL);
	CHECK(strstr(err, "--cpus"));
	CHECK_EQ(P("run", "-k", "k", "-c", "1000"), -EINVAL);
	CHECK(strstr(err, "outside"));
	CHECK_EQ(P("run", "-k", "k", "-c", "-1"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-c", "two"), -EINVAL);
	CHECK(strstr(err, "not a number"));
	CHECK_EQ(P("run", "-k", "k", "--frobnicate"), -EINVAL);
	CHECK(strstr(err, "--frobnicate"));
	CHECK_EQ(P("run", "-k", "k", "-z"), -EINVAL);
	CHECK(strstr(err, "unknown option"));
	CHECK_EQ(P("run", "-k"), -EINVAL);
	CHECK(strstr(err, "needs a value"));
	CHECK_EQ(P("run", "-k", "k", "--console", "tty"), -EINVAL);
	CHECK(strstr(err, "--console"));
	CHECK_EQ(P("run", "-k", "k", "--console", "file:"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "extra"), -EINVAL);
	CHECK(strstr(err, "extra"));

	/* O_DIRECT disks. */
	CHECK_EQ(P("run", "-k", "k", "-d", "a.img,direct"), 0);
	CHECK(cfg.disks[0].direct);
	CHECK_EQ(P("run", "-k", "k", "-d", "a.img"), 0);
	CHECK(!cfg.disks[0].direct);

	/* Disks: -d/--disk PATH[,ro][,id=NAME], repeatable, in order. */
	CHECK_EQ(P("run", "-k", "k"), 0);
	CHECK_EQ(cfg.ndisks, 0);
	CHECK_EQ(P("run", "-k", "k", "-d", "a.img", "--disk", "/x/b.img,ro,id=serial-1",
		   "--disk=c.img,id=c,rw"), 0);
	CHECK_EQ(cfg.ndisks, 3);
	CHECK_STR(cfg.disks[0].path, "a.img");
	CHECK(!cfg.disks[0].ro);
	CHECK_STR(cfg.disks[0].id, "");
	CHECK_STR(cfg.disks[1].path, "/x/b.img");
	CHECK(cfg.disks[1].ro);
	CHECK_STR(cfg.disks[1].id, "serial-1");
	CHECK_STR(cfg.disks[2].path, "c.img");
	CHECK(!cfg.disks[2].ro);
	CHECK_STR(cfg.disks[2].id, "c");
	CHECK_EQ(P("run", "-k", "k", "-d", "a,,b.img,ro", "-d", "x,id=12345678901234567890"), 0);
	CHECK_STR(cfg.disks[0].path, "a,b.img"); /* ",," is a comma */
	CHECK(cfg.disks[0].ro);
	CHECK_STR(cfg.disks[1].id, "12345678901234567890");
	CHECK_EQ(P("run", "-k", "k", "-d", ""), -EINVAL);
	CHECK(strstr(err, "no path"));
	CHECK_EQ(P("run", "-k", "k", "-d", ",ro"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-d", "a.img,rx"), -EINVAL);
	CHECK(strstr(err, "unknown option 'rx'"));
	CHECK_EQ(P("run", "-k", "k", "-d", "a.img,id="), -EINVAL);
	CHECK(strstr(err, "id must be"));
	CHECK_EQ(P("run", "-k", "k", "-d", "a.img,id=123456789012345678901"), -EINVAL);
	CHECK(strstr(err, "id must be"));
	CHECK_EQ(P("run", "-k", "k", "-d",
		   "a.img,id=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
		 -EINVAL);
	CHECK(strstr(err, "too long"));
	CHECK_EQ(P("run", "-k", "k", "-d"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-d", "1", "-d", "2", "-d", "3", "-d", "4", "-d", "5", "-d",
		   "6", "-d", "7", "-d", "8"), 0);
	CHECK_EQ(cfg.ndisks, MVM_MAX_DISKS);
	CHECK_EQ(P("run", "-k", "k", "-d", "1", "-d", "2", "-d", "3", "-d", "4", "-d", "5", "-d",
		   "6", "-d", "7", "-d", "8", "-d", "9"), -EINVAL);
	CHECK(strstr(err, "at most 8"));
	{
		char long_path[MVM_DISK_PATH_MAX + 8];

		memset(long_path, 'p', sizeof(long_path) - 1);
		long_path[sizeof(long_path) - 1] = 0;
		CHECK_EQ(P("run", "-k", "k", "-d", long_path), -EINVAL);
		CHECK(strstr(err, "longer than"));
	}

	/* virtio-rng: on by default, --no-rng / --rng; the default gives way to explicit
	 * devices when the nine slots are full, an explicit --rng does not. */
	CHECK_EQ(P("run", "-k", "k"), 0);
	CHECK(cfg.rng);
	CHECK_EQ(P("run", "-k", "k", "--no-rng"), 0);
	CHECK(!cfg.rng);
	CHECK_EQ(P("run", "-k", "k", "--no-rng", "--rng"), 0);
	CHECK(cfg.rng);
	CHECK_EQ(P("run", "-k", "k", "-d", "1", "-d", "2", "-d", "3", "-d", "4", "-d", "5", "-d",
		   "6", "-d", "7", "-d", "8", "--console", "virtio"), 0);
	CHECK(!cfg.rng);
	CHECK_EQ(P("run", "-k", "k", "-d", "1", "-d", "2", "-d", "3", "-d", "4", "-d", "5", "-d",
		   "6", "-d", "7", "-d", "8", "--console", "virtio", "--rng"), -EINVAL);
	CHECK(strstr(err, "too many virtio devices"));
	CHECK_EQ(P("run", "-k", "k", "-d", "1", "-d", "2", "-d", "3", "-d", "4", "-d", "5", "-d",
		   "6", "-d", "7", "-d", "8", "-n", "tap=t0", "-n", "tap=t1"), -EINVAL);
	CHECK(strstr(err, "at most 9"));

	/* NICs: -n/--net tap=NAME[,mac=...], repeatable. */
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=tap0", "--net", "mac=02:00:0A:c8:00:02,tap=mvm1",
		   "--net=tap=x"), 0);
	CHECK_EQ(cfg.nnets, 3);
	CHECK_STR(cfg.nets[0].tap, "tap0");
	CHECK(!cfg.nets[0].has_mac);
	CHECK_STR(cfg.nets[1].tap, "mvm1");
	CHECK(cfg.nets[1].has_mac);
	CHECK_EQ(cfg.nets[1].mac[0], 0x02);
	CHECK_EQ(cfg.nets[1].mac[3], 0xc8);
	CHECK_EQ(cfg.nets[1].mac[5], 0x02);
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=t,mac=02:00:00:00:00"), -EINVAL);
	CHECK(strstr(err, "not a unicast address"));
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=t,mac=02:00:00:00:00:0g"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=t,mac=02:00:00:00:00:001"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=t,mac=01:00:5e:00:00:01"), -EINVAL);
	CHECK(strstr(err, "not a unicast address"));
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=t,mac=00:00:00:00:00:00"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-n", "mac=02:00:00:00:00:01"), -EINVAL);
	CHECK(strstr(err, "names no TAP"));
	CHECK_EQ(P("run", "-k", "k", "-n", "tap="), -EINVAL);
	CHECK(strstr(err, "not an interface name"));
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=0123456789abcdef"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=a/b"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=.."), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=0123456789abcde"), 0);
	CHECK_EQ(P("run", "-k", "k", "-n", "tap0"), -EINVAL);
	CHECK(strstr(err, "unknown option 'tap0'"));
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=a", "-n", "tap=a"), -EINVAL);
	CHECK(strstr(err, "given twice"));
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=a", "-n", "tap=b", "-n", "tap=c", "-n", "tap=d",
		   "-n", "tap=e"), -EINVAL);
	CHECK(strstr(err, "at most 4"));

	/* Rate limits: bw=SIZE/MS[/BURST], ops=N/MS[/BURST] on --disk, rx_/tx_ on --net, and
	 * --rng=... (getopt's optional argument: only with '='). */
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=10M/1000/20M,ops=500/100", "-n",
		   "tap=t,tx_bw=4096/10,rx_ops=1000/1000/50", "--rng=bw=1K/100"), 0);
	CHECK_EQ(cfg.disks[0].limit.bw.size, 10 << 20);
	CHECK_EQ(cfg.disks[0].limit.bw.refill_ms, 1000);
	CHECK_EQ(cfg.disks[0].limit.bw.one_time_burst, 20 << 20);
	CHECK_EQ(cfg.disks[0].limit.ops.size, 500);
	CHECK_EQ(cfg.disks[0].limit.ops.refill_ms, 100);
	CHECK_EQ(cfg.disks[0].limit.ops.one_time_burst, 0);
	CHECK_EQ(cfg.nets[0].tx_limit.bw.size, 4096); /* a bare number is bytes here */
	CHECK_EQ(cfg.nets[0].tx_limit.bw.refill_ms, 10);
	CHECK_EQ(cfg.nets[0].tx_limit.ops.size, 0);
	CHECK_EQ(cfg.nets[0].rx_limit.ops.size, 1000);
	CHECK_EQ(cfg.nets[0].rx_limit.ops.one_time_burst, 50);
	CHECK_EQ(cfg.nets[0].rx_limit.bw.size, 0);
	CHECK(cfg.rng);
	CHECK_EQ(cfg.rng_limit.bw.size, 1024);
	CHECK_EQ(cfg.rng_limit.bw.refill_ms, 100);
	CHECK_EQ(P("run", "-k", "k", "--rng"), 0);
	CHECK(cfg.rng);
	CHECK_EQ(cfg.rng_limit.bw.size, 0);
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=1M/0"), -EINVAL);
	CHECK(strstr(err, "--disk: bw=1M/0: refill_time is 0"));
	CHECK_EQ(P("run", "-k", "k", "-d", "img,ops=0/100"), -EINVAL);
	CHECK(strstr(err, "--disk: ops: the count per refill must be more than 0"));
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=1M"), -EINVAL);
	CHECK(strstr(err, "--disk: bw='1M' is not SIZE/MS[/BURST]"));
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=1M/10/1/2"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=1M//1"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=/10"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=-1/10"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=1X/10"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-d", "img,ops=1K/10"), -EINVAL); /* ops: a plain count */
	CHECK_EQ(P("run", "-k", "k", "-d", "img,ops=10/1M"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=99999999999999999999999/10"), -EINVAL);
	CHECK(strstr(err, "too large"));
	CHECK_EQ(P("run", "-k", "k", "-d", "img,bw=16384T/10"), -EINVAL);
	CHECK(strstr(err, "size is too large"));
	CHECK_EQ(P("run", "-k", "k", "-d", "img,ops=1/99999999999"), -EINVAL);
	CHECK(strstr(err, "refill_time is too large"));
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=t,bw=1M/10"), -EINVAL);
	CHECK(strstr(err, "unknown option 'bw=1M/10'"));
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=t,rx_bw=1M"), -EINVAL);
	CHECK(strstr(err, "--net: rx_bw='1M'"));
	CHECK_EQ(P("run", "-k", "k", "-n", "tap=t,tx_ops=5/0"), -EINVAL);
	CHECK(strstr(err, "--net: tx_ops=5/0: refill_time is 0"));
	CHECK_EQ(P("run", "-k", "k", "--rng", "bw=1K/100"), -EINVAL);
	CHECK(strstr(err, "--rng takes its limits after '='"));
	CHECK_EQ(P("run", "-k", "k", "--rng="), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--rng=bw=1M/0"), -EINVAL);
	CHECK(strstr(err, "--rng: bw=1M/0"));
	CHECK_EQ(P("run", "-k", "k", "--rng=rate=5"), -EINVAL);
	CHECK(strstr(err, "--rng: unknown option 'rate=5'"));

	/* --vsock cid=N,path=PATH: one device, CID 3 .. 2^32 - 2, a path with room for _PORT. */
	CHECK_EQ(P("run", "-k", "k"), 0);
	CHECK(!cfg.vsock.on);
	CHECK_EQ(P("run", "-k", "k", "--vsock", "path=/tmp/v,,s.sock,cid=42"), 0);
	CHECK(cfg.vsock.on);
	CHECK_EQ(cfg.vsock.cid, 42);
	CHECK_STR(cfg.vsock.path, "/tmp/v,s.sock");
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=4294967294,path=p"), 0);
	CHECK_EQ(cfg.vsock.cid, 4294967294u);
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=2,path=p"), -EINVAL);
	CHECK(strstr(err, "from 3 to"));
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=4294967295,path=p"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=-3,path=p"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=3x,path=p"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=3"), -EINVAL);
	CHECK(strstr(err, "needs cid=N and path=PATH"));
	CHECK_EQ(P("run", "-k", "k", "--vsock", "path=p"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=3,path="), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=3,path=p,port=1"), -EINVAL);
	CHECK(strstr(err, "unknown option 'port=1'"));
	CHECK_EQ(P("run", "-k", "k", "--vsock",
		   "cid=3,path=/0123456789012345678901234567890123456789012345678901234567890123"
		   "45678901234567890123456789012345"), -EINVAL);
	CHECK(strstr(err, "longer than 96"));
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=3,path=a", "--vsock", "cid=4,path=b"),
		 -EINVAL);
	CHECK(strstr(err, "at most one"));
	CHECK_EQ(P("run", "-k", "k", "--vsock", "cid=3,path=a", "-d", "a", "-d", "b", "-d", "c",
		   "-d", "d", "-d", "e", "-d", "f", "-d", "g", "-d", "h", "--rng"), -EINVAL);
	CHECK(strstr(err, ", vsock"));

	/* --balloon amount_mib=N[,deflate_on_oom=on|off][,stats_interval=S]
	 * [,free_page_reporting=on|off]: one device, a target within the guest's RAM. */
	CHECK_EQ(P("run", "-k", "k"), 0);
	CHECK(!cfg.balloon.on);
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=0"), 0);
	CHECK(cfg.balloon.on);
	CHECK_EQ(cfg.balloon.amount_mib, 0);
	CHECK(!cfg.balloon.deflate_on_oom && !cfg.balloon.free_page_reporting);
	CHECK_EQ(cfg.balloon.stats_interval_s, 0);
	CHECK_EQ(P("run", "-k", "k", "--balloon", "stats_interval=5,amount_mib=64,deflate_on_oom=on,"
		   "free_page_reporting=on"), 0);
	CHECK_EQ(cfg.balloon.amount_mib, 64);
	CHECK_EQ(cfg.balloon.stats_interval_s, 5);
	CHECK(cfg.balloon.deflate_on_oom && cfg.balloon.free_page_reporting);
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=256"), 0);
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=257"), -EINVAL);
	CHECK(strstr(err, "amount_mib 257 is more than the guest's 256 MiB"));
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=1000", "-m", "1G"), 0);
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=-1"), -EINVAL);
	CHECK(strstr(err, "amount_mib '-1'"));
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=99999999999"), -EINVAL);
	CHECK(strstr(err, "amount_mib"));
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=1x"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib="), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--balloon", "deflate_on_oom=on"), -EINVAL);
	CHECK(strstr(err, "needs amount_mib=N"));
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=1,deflate_on_oom=yes"), -EINVAL);
	CHECK(strstr(err, "deflate_on_oom 'yes' is not on or off"));
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=1,free_page_reporting=1"), -EINVAL);
	CHECK(strstr(err, "free_page_reporting '1'"));
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=1,stats_interval=65536"), -EINVAL);
	CHECK(strstr(err, "stats_interval '65536'"));
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=1,stats_interval=-1"), -EINVAL);
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=1,size=2"), -EINVAL);
	CHECK(strstr(err, "unknown option 'size=2'"));
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=1", "--balloon", "amount_mib=2"),
		 -EINVAL);
	CHECK(strstr(err, "at most one balloon"));
	CHECK_EQ(P("run", "-k", "k", "--balloon", "amount_mib=1", "-d", "a", "-d", "b", "-d", "c",
		   "-d", "d", "-d", "e", "-d", "f", "-d", "g", "-d", "h", "--rng"), -EINVAL);
	CHECK(strstr(err, ", the balloon"));
	CHECK_EQ(P("run", "--restore", "dir", "--balloon", "amount_mib=1"), -EINVAL);

	/* --console virtio: hvc0 becomes the default kernel console, unless -p says otherwise. */
	CHECK_EQ(P("run", "-k", "k", "--console", "virtio"), 0);
	CHECK_EQ(cfg.console, CONSOLE_VIRTIO);
	CHECK_STR(cfg.cmdline, MVM_VIRTIO_CONSOLE_CMDLINE);
	CHECK_EQ(P("run", "-k", "k", "-p", "console=ttyS0", "--console", "virtio"), 0);
	CHECK_STR(cfg.cmdline, "console=ttyS0");
	CHECK_EQ(P("run", "-k", "k", "--console", "virtio", "-p", "quiet"), 0);
	CHECK_STR(cfg.cmdline, "quiet");

	/* Sizes. */
	CHECK_EQ(parse_size("256M", &v), 0);
	CHECK_EQ(v, 256ULL << 20);
	CHECK_EQ(parse_size("2g", &v), 0);
	CHECK_EQ(v, 2ULL << 30);
	CHECK_EQ(parse_size("64", &v), 0);
	CHECK_EQ(v, 64ULL << 20);
	CHECK_EQ(parse_size("4096B", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(parse_size("1GiB", &v), 0);
	CHECK_EQ(v, 1ULL << 30);
	CHECK_EQ(parse_size("", &v), -EINVAL);
	CHECK_EQ(parse_size("M", &v), -EINVAL);
	CHECK_EQ(parse_size("1.5G", &v), -EINVAL);
	CHECK_EQ(parse_size("12Q", &v), -EINVAL);
	CHECK_EQ(parse_size("1Mx", &v), -EINVAL);
	CHECK_EQ(parse_size("99999999999T", &v), -ERANGE);
	CHECK_EQ(parse_uint("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	return t_done();
}
