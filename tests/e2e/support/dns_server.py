"""A DNS server for the container test, so the image resolves host names the way a runner's
container does (through the /etc/resolv.conf it is given) and not by IP address.

Answers A queries for the names it is given and NXDOMAIN for every other name; other query
types for a known name get an empty answer. Follows its parent: it exits when the test binary
that started it is gone.

Usage: python dns_server.py ADDRESS PORT NAME=IPV4 [NAME=IPV4 ...]
"""

import os
import sys
import threading
import time

from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class Names(BaseResolver):
    def __init__(self, names):
        self.names = names

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if name not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(self.names[name]), ttl=5))
        return reply


def _exit_with_parent():
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


if __name__ == "__main__":
    address, port = sys.argv[1], int(sys.argv[2])
    names = dict(arg.lower().split("=", 1) for arg in sys.argv[3:])
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    # Quiet: the test reads one line ("ready") and then closes the pipe.
    quiet = DNSLogger(logf=lambda _: None)
    udp = DNSServer(Names(names), address=address, port=port, logger=quiet)
    tcp = DNSServer(Names(names), address=address, port=port, tcp=True, logger=quiet)
    udp.start_thread()
    tcp.start_thread()
    print("ready", flush=True)
    while True:
        time.sleep(3600)
