#!/usr/bin/env python3
"""The receiver of bench/packet.sh: counts UDP datagrams on ADDR:PORT.

    udp_count.py ADDR PORT COUNT

Binds ADDR:PORT with a socket buffer large enough to hold every datagram of
a run (SO_RCVBUFFORCE, root only), so a receiver that the machine's load
delays still gets all of them; prints `ready` once bound, then counts until
COUNT arrived, or none came for a second after the first (at most 30 s for
the first, 120 s in all), and prints the count.
"""
import socket
import sys
import time

SO_RCVBUFFORCE = 33  # Linux; not exported by the socket module
BUFFER = 128 << 20  # bytes (the kernel doubles it for bookkeeping)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: udp_count.py ADDR PORT COUNT")
    addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, BUFFER)
    s.bind((addr, port))
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    got = 0
    buf = bytearray(2048)
    s.settimeout(30)
    try:
        while got < count and time.monotonic() < deadline:
            s.recv_into(buf)
            if got == 0:
                s.settimeout(1)
            got += 1
    except socket.timeout:
        pass
    print(got, flush=True)


if __name__ == "__main__":
    main()
