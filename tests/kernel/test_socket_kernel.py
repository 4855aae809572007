"""The iptables matches fwc writes with a chain of their own in nft, against the kernel:

- `-m socket` (nft `socket transparent`, plus a chain where wildcard sockets are left out or
  the mark restored) with real sockets in the harness's firewall namespace: a wildcard
  listener, one bound to an address, a transparent one with a mark, and a port with none;
- `! --uid-owner/--gid-owner`, which also holds for packets without a socket;
- `-m tcpmss ! --mss`, which also holds for packets without an MSS option."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fwc.backends.nft import emit_nft
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts

pytestmark = pytest.mark.kernel

WILD, BOUND, TRANSP, NONE = 7001, 7002, 7003, 7004
SOCKETS = f"""
import socket, sys, time
socks = []
def listen(addr, port, transparent=False, mark=None):
    s = socket.socket()
    s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: the address is added per case
    if transparent:
        s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
    if mark is not None:
        s.setsockopt(socket.SOL_SOCKET, 36, mark)  # SO_MARK
    s.bind((addr, port)); s.listen(8); socks.append(s)
listen("0.0.0.0", {WILD}); listen("192.0.2.1", {BOUND})
listen("192.0.2.1", {TRANSP}, transparent=True, mark=7)
print("ready", flush=True)
time.sleep(600)
"""


def rules(*lines: str) -> str:
    return "*filter\n:INPUT ACCEPT [0:0]\n" + "".join(f"{x}\n" for x in lines) + "COMMIT\n"


def cases(base: int):
    """A SYN to each port, from source ports of their own (a listener keeps a request socket
    per SYN it answered, which a later lookup finds), and a SYN retransmitted to the wildcard
    listener: the second one finds that request socket, which xt_socket counts."""
    syn = {"dir": "in", "iif": "eth0", "src": "198.51.100.7", "dst": "192.0.2.1", "flags": "S"}
    out = [{"name": str(port), "probe": dict(syn, sport=base + port - 7000, dport=port)}
           for port in (WILD, BOUND, TRANSP, NONE)]
    again = dict(syn, sport=base + 99, dport=WILD)
    out.append({"name": "retrans", "setup": [again], "probe": again})
    return cases_from_json(out)


# rule -> the ports whose SYN it drops (xt_socket: a socket is found; without --nowildcard not
# a full wildcard one; with --transparent a transparent one)
EXPECT = {
    "-A INPUT -p tcp -m socket -j DROP": {BOUND, TRANSP, "retrans"},
    "-A INPUT -p tcp -m socket --nowildcard -j DROP": {WILD, BOUND, TRANSP, "retrans"},
    "-A INPUT -p tcp -m socket --transparent -j DROP": {TRANSP},
    "-A INPUT -p tcp -m socket --transparent --nowildcard -j DROP": {TRANSP},
    # the mark comes from a transparent, non-wildcard socket: only then does the next rule drop
    "-A INPUT -p tcp -m socket --restore-skmark\n-A INPUT -m mark --mark 7 -j DROP": {TRANSP},
}


@pytest.fixture
def sockets(kernel):
    p = subprocess.Popen(["ip", "netns", "exec", kernel.fw, sys.executable, "-c", SOCKETS],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        yield kernel
    finally:
        p.kill()
        p.wait()


def test_socket_match_and_its_nft_form_agree_on_real_sockets(sockets):
    kernel = sockets
    base = 20000
    for rule, dropped in EXPECT.items():
        text = rules(*rule.split("\n"))
        nft = emit_nft(parse_iptables_save(text, "socket.rules"))
        assert "socket" in nft and "xt " not in nft
        for loader in (("iptables", text, None), ("nft", nft)):
            base += 100
            cs = cases(base)
            kernel.prepare(cs)
            want = ["DROP" if (c.name if c.name == "retrans" else int(c.name)) in dropped
                    else "ACCEPT" for c in cs]
            got = [r.verdict for r in kernel_verdicts(loader, cs, kernel)]
            assert got == want, (rule, loader[0], nft if loader[0] == "nft" else "")


OWNER_CASES = cases_from_json([
    # the harness sends `out` packets from its own (root) socket; forwarded ones have none
    {"name": "out", "probe": {"dir": "out", "src": "192.0.2.1", "dst": "198.51.100.7",
                              "sport": 5000, "dport": 80, "flags": "S"}},
    {"name": "fwd", "probe": {"dir": "fwd", "iif": "eth0", "oif": "eth1", "src": "198.51.100.7",
                              "dst": "203.0.113.10", "sport": 5001, "dport": 80, "flags": "S"}},
])


@pytest.mark.parametrize("rule,dropped", [
    ("! --uid-owner 0", {"fwd"}),
    ("! --uid-owner 1000", {"out", "fwd"}),
    ("! --uid-owner 0 ! --gid-owner 0", {"fwd"}),
    ("--uid-owner 0 ! --gid-owner 1000", {"out"}),
])
def test_negated_owner_and_its_nft_form_agree(kernel, rule, dropped):
    """xt_owner's negation holds for packets without a socket (here: forwarded ones); fwc's
    `meta skuid X return` in a chain of its own keeps that, where `meta skuid != X` would not."""
    text = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
            ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            f"-A POSTROUTING -p tcp --dport 80 -m owner {rule} -j DROP\nCOMMIT\n")
    nft = emit_nft(parse_iptables_save(text, "owner.rules"))
    assert "jump fwc_owner_1" in nft
    kernel.prepare(OWNER_CASES)
    want = ["DROP" if c.name in dropped else "ACCEPT" for c in OWNER_CASES]
    for loader in (("iptables", text, None), ("nft", nft)):
        got = [r.verdict for r in kernel_verdicts(loader, OWNER_CASES, kernel)]
        assert got == want, (loader[0], nft)


@pytest.mark.parametrize("table,chain", [("mangle", "FORWARD"), ("filter", "INPUT")])
def test_negated_tcpmss_and_its_nft_form_agree(kernel, table, chain):
    """The harness's TCP packets carry no MSS option: xt's `! --mss` matches them, and so
    must fwc's form (`tcp option maxseg size != X` would not)."""
    heads = {"mangle": ":PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                       ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
             "filter": ":INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"}
    text = (f"*{table}\n{heads[table]}-A {chain} -p tcp --dport 80 -m tcpmss ! --mss 1000:1500 "
            "-j DROP\nCOMMIT\n")
    nft = emit_nft(parse_iptables_save(text, "mss.rules"))
    assert "tcp option maxseg size 1000-1500 return" in nft
    syn = {"src": "198.51.100.7", "sport": 6000, "dport": 80, "flags": "S", "iif": "eth0"}
    probe = dict(syn, dir="fwd", dst="203.0.113.10", oif="eth1") if chain == "FORWARD" else \
        dict(syn, dir="in", dst="192.0.2.1")
    cs = cases_from_json([{"name": "syn80", "probe": probe},
                          {"name": "syn81", "probe": dict(probe, dport=81, sport=6001)}])
    kernel.prepare(cs)
    for loader in (("iptables", text, None), ("nft", nft)):
        got = [r.verdict for r in kernel_verdicts(loader, cs, kernel)]
        assert got == ["DROP", "ACCEPT"], (loader[0], nft)
    from fwc.backends.simulate import simulate
    from fwc.testing.kernel import sim_options
    rs = parse_iptables_save(text, "mss.rules")
    assert [r.verdict for r in simulate(rs, cs, sim_options())] == ["DROP", "ACCEPT"]
