#!/usr/bin/env python3
"""The host end of the virtio-net bench: on TAP (argv[1]), answers every frame of type 0x88b6
(echo request) with the same frame, addressed back to its sender, as type 0x88b7 (echo reply).
Frames of other types are not even delivered to this socket. Runs until killed; run it inside
the bench's own network namespace."""
import socket
import sys

REQUEST, REPLY = 0x88b6, 0x88b7


def main():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(REQUEST))
    s.bind((sys.argv[1], REQUEST))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    print("ECHO-READY", flush=True)
    buf = bytearray(65536)
    view = memoryview(buf)
    while True:
        n = s.recv_into(buf)
        if n < 14:
            continue
        # dst <- src, src <- dst, type <- reply; the payload goes back as it came.
        dst, src = bytes(buf[0:6]), bytes(buf[6:12])
        buf[0:6], buf[6:12] = src, dst
        buf[12:14] = REPLY.to_bytes(2, "big")
        s.send(view[:n])


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
