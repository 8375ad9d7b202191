#!/usr/bin/env python3
# make_seeds.py: writes the committed seed corpora in corpus/<target>/ (small, well-formed and
# a few malformed inputs per target, in each target's input layout; see the target's header).
# Rerun after changing an input layout: python3 tests/fuzz/make_seeds.py
import os
import struct

top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(top, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_vq ----
NEXT, WRITE, INDIRECT = 1, 2, 4


def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def vq_seed(size_log2, features, descs, heads, ops, extra=b"", event=None):
    size = 1 << size_log2
    d, a, u = 0x0, 16 * size, 16 * size + 0x100
    img = bytearray(u + 8 * size + 8)
    for i, x in enumerate(descs):
        img[16 * i:16 * i + 16] = x
    struct.pack_into("<HH", img, a, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", img, a + 4 + 2 * (i % size), h)
    if event is not None:
        struct.pack_into("<H", img, a + 4 + 2 * size, event)
    img += extra
    hdr = bytes([size_log2, 0, features]) + struct.pack("<I", d)[:3] + \
        struct.pack("<I", a)[:3] + struct.pack("<I", u)[:3] + \
        struct.pack("<I", len(img))[:3] + b"\0"
    return hdr + bytes(img) + bytes(ops)


DATA = 0x2000
put("fuzz_vq", "simple", vq_seed(3, 0, [desc(DATA, 16, NEXT, 1), desc(DATA + 0x100, 512, WRITE, 0)],
                                 [0], [0, 5, 0]))
put("fuzz_vq", "indirect", vq_seed(3, 2, [desc(0x1000, 48, INDIRECT, 0)], [0], [0, 6, 0x86, 7, 5],
                                   extra=bytes(0x1000 - (0x100 + 16 * 8 + 64 + 8)) +
                                   desc(DATA, 16, NEXT, 1) + desc(DATA + 0x40, 8, NEXT, 2) +
                                   desc(DATA + 0x80, 64, WRITE, 0)))
put("fuzz_vq", "loop", vq_seed(3, 0, [desc(DATA, 16, NEXT, 1), desc(DATA, 16, NEXT, 0)], [0, 1],
                               [0, 0]))
put("fuzz_vq", "event_idx", vq_seed(4, 3, [desc(DATA + 16 * i, 16, WRITE, 0) for i in range(8)],
                                    list(range(8)), [3, 1, 0, 4, 5, 0, 5, 2, 0x12, 0, 0, 0, 0, 0],
                                    event=2))
put("fuzz_vq", "cross", vq_seed(3, 0, [desc(0xfff8, 16, 0, 0), desc(0x100000000, 4096, WRITE, 0),
                                       desc(0xffffffffffffff00, 0x200, 0, 0)], [0, 1, 2],
                                [0, 0, 0]))
put("fuzz_vq", "bad_order", vq_seed(2, 2, [desc(DATA, 8, WRITE | NEXT, 1), desc(DATA, 8, NEXT, 2),
                                           desc(DATA, 16, INDIRECT | NEXT, 3),
                                           desc(DATA + 4, 16, INDIRECT, 0)], [0, 2, 3, 7],
                                    [0, 0, 0, 0]))

# ---- fuzz_options ----
def argv(*args):
    return b"\0".join(a.encode() for a in args)


put("fuzz_options", "minimal", argv("run", "-k", "vmlinux"))
put("fuzz_options", "full", argv("run", "--kernel", "bzImage", "--initrd", "initrd.cpio",
                                 "--cmdline", "console=hvc0", "--mem", "1G", "--cpus", "4",
                                 "--console", "virtio", "--disk", "a.img,ro,id=root",
                                 "-d", "b,,c.img,direct", "--net", "tap=tap0,mac=52:54:00:12:34:56",
                                 "--rng", "--stats", "--accel", "dbt", "--seccomp", "log"))
put("fuzz_options", "short", argv("run", "-k", "k", "-i", "i", "-p", "x", "-m", "512M", "-c", "2",
                                  "-d", "disk", "-n", "tap=t1", "--no-rng", "--console",
                                  "file:/tmp/out"))
put("fuzz_options", "bad", argv("run", "-k", "k", "--mem", "99999999999T", "--cpus", "0", "-x"))
put("fuzz_options", "restore", argv("run", "--restore", "/snap", "--snapshot-dir", "/s2",
                                    "--console", "none"))
put("fuzz_options", "firecracker", argv("--api-sock", "/a.sock", "--id", "vm-1", "--level", "Debug",
                                        "--config-file", "c.json", "--accel", "dbt"))
put("fuzz_options", "balloon", argv("run", "-k", "k", "-m", "512M", "--balloon",
                                    "amount_mib=64,deflate_on_oom=on,stats_interval=5,"
                                    "free_page_reporting=off", "--balloon", "amount_mib=999"))
put("fuzz_options", "help", argv("--help"))
put("fuzz_options", "version", argv("version"))
put("fuzz_options", "many_disks", argv("run", "-k", "k", *sum((["-d", "d%d" % i] for i in range(10)), [])))
put("fuzz_options", "rate_limits", argv("run", "-k", "k", "-d", "a.img,bw=10M/1000/20M,ops=500/100",
                                        "-n", "tap=t0,rx_bw=1M/100,tx_ops=1000/1000/10",
                                        "--rng=bw=1K/100,ops=5/1000"))
put("fuzz_options", "rate_limits_bad", argv("run", "-k", "k", "-d", "a,bw=1M/0", "-d", "b,ops=0/5",
                                            "-d", "c,bw=1M//1", "-n", "tap=t,rx_bw=99999999999999T/1",
                                            "--rng=", "--rng=ops=1/2/3/4"))
put("fuzz_options", "console_none", argv("run", "-k", "k", "--console", "none", "--accel", "auto",
                                         "--append", "", "--seccomp", "off", "extra"))


# ---- fuzz_boot ----
def boot_seed(flags, cmdline, initrd_size, initrd_bytes, kernel):
    return bytes([flags]) + struct.pack("<H", len(cmdline)) + \
        struct.pack("<H", initrd_size) + bytes([0, len(initrd_bytes), 0]) + cmdline + \
        initrd_bytes + kernel


def bzimage(version=0x020f, xlf=3, setup_sects=1, pm=512):
    setup = 512 * (setup_sects + 1)
    img = bytearray(setup + pm)
    img[0x1f1] = setup_sects
    struct.pack_into("<I", img, 0x1f4, pm // 16)
    struct.pack_into("<H", img, 0x1fa, 0xffff)
    struct.pack_into("<H", img, 0x1fe, 0xaa55)
    img[0x200] = 0xeb
    img[0x201] = 0x26c - 0x202
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = 1
    struct.pack_into("<I", img, 0x214, 0x100000)
    struct.pack_into("<I", img, 0x22c, 0x7fffffff)
    struct.pack_into("<I", img, 0x230, 0x200000)
    img[0x234] = 1
    struct.pack_into("<H", img, 0x236, xlf)
    struct.pack_into("<I", img, 0x238, 255)
    struct.pack_into("<Q", img, 0x258, 0x1000000)
    struct.pack_into("<I", img, 0x260, 0x400000)
    for i in range(pm):
        img[setup + i] = (i * 7 + 3) & 0xff
    return bytes(img)


def pvh(is64):
    linux_note = bytes([6, 0, 0, 0, 3, 0, 0, 0, 1, 1, 0, 0]) + b"Linux\0\0\0" + bytes([7, 7, 7, 0])
    ehsize, phentsize = (64, 56) if is64 else (52, 32)
    notes = ehsize + 2 * phentsize
    xen = notes + len(linux_note)
    xen_len = 24 if is64 else 20
    data = xen + xen_len
    entry = 0x100010
    xen_note = struct.pack("<III", 4, 8 if is64 else 4, 18) + b"Xen\0" + \
        (struct.pack("<Q", entry) if is64 else struct.pack("<I", entry))
    seg = bytes((0x90 + i) & 0xff for i in range(64))
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1, 1]) + bytes(9)
    if is64:
        eh = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0xffffffff81000000, ehsize, 0, 0,
                                 ehsize, phentsize, 2, 0, 0, 0)
        ph = struct.pack("<IIQQQQQQ", 1, 5, data, 0xffffffff81000000, 0x100000, 64, 0x3000, 4096)
        ph += struct.pack("<IIQQQQQQ", 4, 0, notes, 0, 0, data - notes, data - notes, 4)
    else:
        eh = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, entry, ehsize, 0, 0, ehsize,
                                 phentsize, 2, 0, 0, 0)
        ph = struct.pack("<IIIIIIII", 1, data, 0x100000, 0x100000, 64, 0x3000, 5, 4096)
        ph += struct.pack("<IIIIIIII", 4, notes, 0, 0, data - notes, data - notes, 0, 4)
    return eh + ph + linux_note + xen_note + seg


put("fuzz_boot", "bzimage", boot_seed(0x04, b"console=ttyS0 reboot=k panic=1", 0, b"", bzimage()))
put("fuzz_boot", "bzimage_initrd", boot_seed(0x01, b"console=ttyS0", 10000, b"\x5a\xa5\x01",
                                             bzimage()))
put("fuzz_boot", "bzimage_old", boot_seed(0x00, b"", 0, b"", bzimage(version=0x0206, xlf=0)))
put("fuzz_boot", "bzimage_holed", boot_seed(0x02, b"x", 0, b"", bzimage(setup_sects=4)))
put("fuzz_boot", "pvh64", boot_seed(0x00, b"console=hvc0", 0, b"", pvh(True)))
put("fuzz_boot", "pvh32_initrd", boot_seed(0x05, b"init=/bin/sh", 4096, b"\x30\x37", pvh(False)))
put("fuzz_boot", "pvh64_big_initrd", boot_seed(0x31, b"", 0x7800, b"\x01", pvh(True)))
put("fuzz_boot", "garbage", boot_seed(0x0c, b"\xff" * 8, 0, b"", b"\x7fELF" + bytes(60)))

# ---- fuzz_virtio_mmio ----
OP_REGW, OP_REG32, OP_SETUP, OP_MEM, OP_DESC, OP_PUBLISH, OP_KICK, OP_WAIT, OP_RESET, OP_HOST, \
    OP_ACK, OP_CHAIN = 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12


def setup(lo=0xffffffff, hi=0xff, size_log2=3, flags=0):
    return bytes([OP_SETUP]) + struct.pack("<IBBB", lo, hi, size_log2, flags)


def chain(q, head, hdr, segs):
    b = bytes([OP_CHAIN, q, len(segs) - 1]) + struct.pack("<H", head) + hdr.ljust(16, b"\0")[:16]
    for length, writable in segs:
        b += struct.pack("<HB", length, 2 if writable else 0)
    return b


def host(data):
    return bytes([OP_HOST, len(data)]) + data


W = bytes([OP_WAIT])
put("fuzz_virtio_mmio", "blk_rw", bytes([0, 0]) + setup() +
    chain(0, 0, struct.pack("<IIQ", 0, 0, 0), [(16, False), (512, True), (1, True)]) + W +
    bytes([OP_ACK]) + chain(0, 3, struct.pack("<IIQ", 1, 0, 8), [(16, False), (1024, False),
                                                                 (1, True)]) + W +
    chain(0, 6, struct.pack("<IIQ", 4, 0, 0), [(16, False), (1, True)]) + W)
put("fuzz_virtio_mmio", "blk_reset_midio", bytes([0, 0]) + setup(size_log2=4) +
    b"".join(chain(0, 3 * i, struct.pack("<IIQ", i % 2, 0, i), [(16, False), (4096, i % 2 == 0),
                                                                (1, True)]) for i in range(6)) +
    bytes([OP_RESET]) + setup() + chain(0, 0, struct.pack("<IIQ", 8, 0, 0),
                                        [(16, False), (20, True), (1, True)]) + W)
put("fuzz_virtio_mmio", "blk_ro_discard", bytes([0, 1]) + setup() +
    chain(0, 0, struct.pack("<IIQ", 11, 0, 0) + struct.pack("<QII", 0, 8, 0),
          [(32, False), (1, True)]) + W)
put("fuzz_virtio_mmio", "console", bytes([1, 0]) + setup() + host(b"hello guest\n") +
    chain(0, 0, b"", [(64, True)]) + W + chain(1, 0, b"hello host\n", [(11, False)]) + W +
    bytes([OP_ACK]) + bytes([OP_RESET]) + W)
put("fuzz_virtio_mmio", "rng", bytes([2, 0]) + setup() + chain(0, 0, b"", [(4096, True)]) + W +
    chain(0, 1, b"", [(16, True), (16, True)]) + W + bytes([OP_ACK]))
NETHDR = bytes(12)
put("fuzz_virtio_mmio", "net", bytes([3, 0]) + setup(lo=(1 << 5) | (1 << 15) | 1) +
    b"".join(chain(0, i, b"", [(2048, True)]) for i in range(4)) +
    host(NETHDR + b"\xff" * 6 + b"\x02\0\0\0\0\x02\x08\x00" + b"frame") + W +
    chain(1, 0, NETHDR, [(12, False), (60, False)]) + W + bytes([OP_RESET]))
put("fuzz_virtio_mmio", "net_bighdr", bytes([3, 0]) + setup(lo=0xffffffff) +
    chain(1, 0, bytes([1, 1]) + struct.pack("<HHHH", 54, 1448, 34, 16), [(12, False), (100, False)])
    + W)
# The balloon: all of its features (statistics, reporting, deflate on OOM), inflate and deflate
# arrays of frame numbers (good ones, then one in the reserved hole, one past guest memory), a
# statistics buffer, a free page report, a new target from the host.
BALLOON_FEATURES = (1 << 1) | (1 << 2) | (1 << 5) | (1 << 28) | (1 << 29)
put("fuzz_virtio_mmio", "balloon", bytes([4, 0x0e]) + setup(lo=BALLOON_FEATURES, hi=1) +
    chain(0, 0, struct.pack("<IIII", 0x40, 0x41, 0x42, 0x60), [(16, False)]) + W +
    chain(1, 0, struct.pack("<II", 0x40, 0x41), [(8, False)]) + W +
    chain(0, 1, struct.pack("<II", 0x40, 0x85), [(8, False)]) + W +
    chain(0, 2, struct.pack("<II", 0x41, 0x180), [(8, False)]) + W +
    chain(2, 0, struct.pack("<HQHQ", 4, 1 << 20, 5, 1 << 24)[:16], [(20, False)]) + W +
    chain(3, 0, b"", [(4096, True), (8192, True)]) + W +
    bytes([OP_HOST, 0]) + struct.pack("<IB", 128, 3) + W + bytes([OP_ACK]) + bytes([OP_RESET]))
put("fuzz_virtio_mmio", "registers", bytes([2, 0]) +
    bytes([OP_REG32, 0x70 // 4]) + struct.pack("<I", 1) +
    bytes([OP_REG32, 0x70 // 4]) + struct.pack("<I", 3) +
    bytes([OP_REG32, 0x30 // 4]) + struct.pack("<I", 0) +
    bytes([OP_REG32, 0x38 // 4]) + struct.pack("<I", 7) +
    bytes([OP_REG32, 0x44 // 4]) + struct.pack("<I", 1) +
    bytes([OP_REG32, 0x70 // 4]) + struct.pack("<I", 0x0f) +
    bytes([0x20 | OP_REGW]) + struct.pack("<H", 0x100) + struct.pack("<I", 0xdeadbeef) +
    bytes([1]) + struct.pack("<H", 0x0fc) + bytes([OP_KICK, 0]) + W)


# ---- fuzz_engine: 16 registers (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8-r15), RFLAGS, mode,
# then code (see fuzz_engine.c; tests/unit/emu_fixture.h has the addresses) ----
FX_DATA, FX_STACK, FX_HOLE, FX_MMIO, FX_USER = 0x100000, 0x400000, 0x600000, 0xd0000000, 0x200000


def engine_seed(code, cpl3=False, **regs):
    names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"] + ["r%d" % i for i in range(8, 16)]
    vals = [regs.get(n, 0) for n in names]
    if not regs.get("rsp"):
        vals[4] = (FX_USER if cpl3 else FX_STACK) + 0xf00
    return struct.pack("<16Q", *vals) + struct.pack("<Q", 0x202) + bytes([1 if cpl3 else 0]) + code


put("fuzz_engine", "string_stack", engine_seed(
    bytes.fromhex("f348ab" "50" "5b" "e800000000" "58" "4801d8" "48f7f1" "0fa2" "c3"),
    rax=0x1122334455667788, rcx=4, rdi=FX_DATA + 0x100, rdx=0))
put("fuzz_engine", "mmio", engine_seed(bytes.fromhex("8907" "8b07" "66894702" "48a5"),
                                       rdi=FX_MMIO, rsi=FX_DATA, rax=0x1234))
put("fuzz_engine", "fault", engine_seed(bytes.fromhex("488b07" "cc" "0f0b"), rdi=FX_HOLE))
put("fuzz_engine", "sse_x87", engine_seed(bytes.fromhex("f30f6f07" "660fefc0" "0f2907" "d9e8" "dd1f"
                                                        "0f01d0"), rdi=FX_DATA + 0x40))
put("fuzz_engine", "user", engine_seed(bytes.fromhex("0f05" "cd80" "fa" "0f20c0" "f4"), cpl3=True))


# Bursts: more chains than a queue's per-iteration budget, one kick (op 13).
def burst(q, n, flags, length, hdr=b""):
    return bytes([13, q, n - 1, flags]) + struct.pack("<H", length - 1) + hdr.ljust(16, b"\0")[:16]


put("fuzz_virtio_mmio", "rng_burst", bytes([2, 0]) + setup(size_log2=6) + burst(0, 64, 1, 64) + W +
    W + bytes([OP_ACK]) + burst(0, 64, 1, 4096) + bytes([OP_RESET]) + W)
put("fuzz_virtio_mmio", "blk_burst", bytes([0, 0]) + setup(size_log2=8) +
    burst(0, 128, 2, 16, struct.pack("<IIQ", 4, 0, 0)) + W + W)
put("fuzz_virtio_mmio", "console_burst", bytes([1, 0]) + setup(size_log2=6) +
    burst(1, 64, 0, 8, b"burst!\n") + W + W)


# ---- fuzz_fc_config ----
def fc_call(op, ident, body):
    body = body.encode()
    return bytes([op, ident]) + struct.pack("<H", len(body)) + body


FC_SDK = [
    (5, 0, '{"log_path": "/tmp/fc.log", "level": "Info", "show_level": true}'),
    (6, 0, '{"metrics_path": "/tmp/fc.metrics"}'),
    (0, 0, '{"vcpu_count": 2, "mem_size_mib": 256, "smt": false, "track_dirty_pages": false}'),
    (2, 0, '{"kernel_image_path": "/vmlinux", "initrd_path": "/initrd", '
           '"boot_args": "console=ttyS0 reboot=k"}'),
    (3, 0, '{"drive_id": "rootfs", "path_on_host": "/r.img", "is_root_device": true, '
           '"is_read_only": false}'),
    (3, 1, '{"drive_id": "data", "path_on_host": "/d.img", "is_root_device": false, '
           '"is_read_only": true, "cache_type": "Writeback", "partuuid": "x"}'),
    (4, 2, '{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}'),
    (7, 0, '{}'),
    (10, 0, '{"network_interfaces": ["eth0"], "version": "V2"}'),
    (8, 0, '{"latest": {"meta-data": {"ami-id": "ami-1"}}}'),
    (9, 0, '{"latest": {"meta-data": null}, "x": [1, 2]}'),
    (1, 0, '{"vcpu_count": 1}'),
    (11, 0, '{"drive_id": "rootfs", "path_on_host": "/r2.img"}'),
]
put("fuzz_fc_config", "sdk_sequence", b"".join(fc_call(*c) for c in FC_SDK))
put("fuzz_fc_config", "config_file", fc_call(12, 0, json_doc := (
    '{"boot-source": {"kernel_image_path": "/k"}, "drives": [{"drive_id": "a_1", '
    '"path_on_host": "/a", "is_root_device": true}], "machine-config": {"vcpu_count": 1, '
    '"mem_size_mib": 64}, "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "t"}], '
    '"entropy": {}, "logger": {"level": "Off"}}')))
put("fuzz_fc_config", "rate_limiters", b"".join(fc_call(*c) for c in [
    (3, 0, '{"drive_id": "rootfs", "path_on_host": "/r.img", "is_root_device": true, '
           '"rate_limiter": {"bandwidth": {"size": 1048576, "one_time_burst": 4194304, '
           '"refill_time": 100}, "ops": {"size": 100, "refill_time": 1000}}}'),
    (4, 2, '{"iface_id": "eth0", "host_dev_name": "tap0", "rx_rate_limiter": {"bandwidth": '
           '{"size": 65536, "refill_time": 10}}, "tx_rate_limiter": {"ops": {"size": 10, '
           '"refill_time": 1}}}'),
    (7, 0, '{"rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}}'),
    (11, 0, '{"drive_id": "rootfs", "rate_limiter": {"ops": {"size": 0, "refill_time": 0}}}'),
    (13, 2, '{"iface_id": "eth0", "tx_rate_limiter": {"bandwidth": {"size": 1, '
            '"refill_time": 1}}}'),
    (12, 0, '{"boot-source": {"kernel_image_path": "/k"}, "drives": [{"drive_id": "a_1", '
            '"path_on_host": "/a", "is_root_device": false, "rate_limiter": {"ops": {"size": 5, '
            '"refill_time": 5}}}], "entropy": {"rate_limiter": {"ops": {"size": 1, '
            '"refill_time": 1000}}}}')]))
put("fuzz_fc_config", "rate_limiters_bad", b"".join(fc_call(*c) for c in [
    (3, 0, '{"drive_id": "rootfs", "path_on_host": "/r.img", "is_root_device": true, '
           '"rate_limiter": {"bandwidth": {"size": 1048576, "refill_time": 0}}}'),
    (3, 0, '{"drive_id": "rootfs", "path_on_host": "/r.img", "is_root_device": true, '
           '"rate_limiter": {"bandwidth": {"size": -1, "refill_time": 10}}}'),
    (4, 2, '{"iface_id": "eth0", "host_dev_name": "tap0", "rx_rate_limiter": {"ops": '
           '{"size": 9223372036854775807, "refill_time": 10}}}'),
    (7, 0, '{"rate_limiter": {"bandwidth": {"size": 1}, "x": 1}}'),
    (7, 0, '{"rate_limiter": [1]}'),
    (13, 2, '{"iface_id": "eth0", "rx_rate_limiter": {"ops": {"size": 1, "refill_time": '
            '99999999999999, "one_time_burst": 1.5}}}')]))
put("fuzz_fc_config", "balloon", b"".join(fc_call(*c) for c in [
    (0, 0, '{"vcpu_count": 1, "mem_size_mib": 256}'),
    (2, 0, '{"kernel_image_path": "/vmlinux"}'),
    (15, 0, '{"amount_mib": 0, "deflate_on_oom": true, "stats_polling_interval_s": 1, '
            '"free_page_reporting": true, "free_page_hinting": false}'),
    (16, 0, '{"amount_mib": 64}'), (16, 0, '{"amount_mib": 300}'), (16, 0, '{"amount_mib": -1}'),
    (17, 0, '{"stats_polling_interval_s": 5}'), (17, 0, '{"stats_polling_interval_s": 0}'),
    (15, 0, '{"amount_mib": "64", "deflate_on_oom": 1}'),
    (12, 0, '{"boot-source": {"kernel_image_path": "/k"}, "machine-config": {"vcpu_count": 1, '
            '"mem_size_mib": 64}, "balloon": {"amount_mib": 128, "deflate_on_oom": false}}')]))
put("fuzz_fc_config", "bad", b"".join(fc_call(*c) for c in [
    (0, 0, '{"vcpu_count": 0, "mem_size_mib": 1, "x": 1}'), (3, 0, '[1, 2]'),
    (4, 3, '{"iface_id": "a_1", "host_dev_name": "tap-name-far-too-long-for-ifnamsiz"}'),
    (12, 0, '{"drives": {}, "vsock": {}}'), (2, 0, '{"kernel_image_path": ""}'),
    (8, 0, '"not an object"'), (3, 0, '{"drive_id": "rootfs"')]))


# ---- fuzz_snapshot: 3-byte patches (16-bit offset into the sections, XOR byte) ----
def patches(*pairs):
    return b"".join(struct.pack("<HB", off, x) for off, x in pairs)


put("fuzz_snapshot", "valid", b"")
# vCPU 0's RFLAGS: after SNAP_DBT_MODEL (368 bytes) and SNAP_DBT_ENGINE (88), headers of 16.
put("fuzz_snapshot", "rflags", patches((16 + 368 + 16 + 88 + 16 + 136, 0x08)))
put("fuzz_snapshot", "two", patches((40, 0x01), (3000, 0x80)))
put("fuzz_snapshot", "section_header", patches((0, 0x02)))
