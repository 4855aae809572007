"""Vectors of iptables-translate where fwc's nft differs from the expected text: the kernel
shows that fwc's rule does what the iptables rule does.  Each test loads the iptables command
(iptables-nft, xt modules through nft_compat) in a throw-away namespace, sends packets over
loopback and records the outcome; then does the same with fwc's nft output.

Used by tests/txlate_known.py to back its "equivalent" entries (see each test's vectors)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import struct

import pytest

from fwc.backends.nft import emit_nft
from fwc.errors import ErrorGroup
from fwc.frontends.iptables import parse_iptables_script
from fwc.testing import netns
from tests.corpus import TXLATE, require
from tests.txlate import case_ruleset, load_cases

pytestmark = pytest.mark.kernel

IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", 66)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)


@pytest.fixture(scope="module")
def ns(kernel_ok):
    name = f"tx2-eq-{os.getpid()}"
    netns.create(name)
    try:
        netns.run(["ip", "link", "set", "lo", "up"], ns=name)
        yield name
    finally:
        netns.delete(name)


def _reset(ns: str) -> None:
    netns.run(["nft", "flush", "ruleset"], ns=ns)
    netns.run(["conntrack", "-F"], ns=ns, check=False)


def _cases(prefix: str) -> list:
    require(TXLATE)
    return [c for c in load_cases() if c.id.startswith(prefix)]


def _load_iptables(ns: str, tool: str, args) -> None:
    netns.run([tool, *args], ns=ns)


def _load_fwc(ns: str, script: str) -> None:
    text = emit_nft(parse_iptables_script(script, "<test>"))
    netns.run(["nft", "-f", "-"], input=text, ns=ns)


# --------------------------------------------------------------------------- TOS target

def _tos_received(ns: str, family: str, values) -> list[int]:
    """Send one UDP datagram over loopback per TOS value; the TOS byte each one arrived with."""
    v6 = family == "ip6"
    af, host = (socket.AF_INET6, "::1") if v6 else (socket.AF_INET, "127.0.0.1")
    out = []
    with netns.entered(ns):
        rx = socket.socket(af, socket.SOCK_DGRAM)
        tx = socket.socket(af, socket.SOCK_DGRAM)
    try:
        rx.bind((host, 0))
        rx.settimeout(2)
        if v6:
            rx.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
        else:
            rx.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
        for tos in values:
            if v6:
                tx.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, tos)
            else:
                tx.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
            tx.sendto(b"x", rx.getsockname()[:2])
            _, anc, _, _ = rx.recvmsg(16, socket.CMSG_SPACE(4))
            got = None
            for level, kind, data in anc:
                if v6 and kind == IPV6_TCLASS:
                    got = struct.unpack("i", data[:4])[0]
                elif not v6 and kind == socket.IP_TOS:
                    got = data[0]
            assert got is not None, "no TOS in the ancillary data"
            out.append(got)
    finally:
        rx.close()
        tx.close()
    return out


TOS_VALUES = list(range(256))
# own IPv4 cases: fwc writes whole DSCP / ECN fields there, refuses partial ones
TOS_V4 = ["--set-tos 0x1f", "--set-tos 0xff", "--set-tos 0x10/0xfc", "--set-tos 0x1/0x3",
          "--and-tos 0x3", "--and-tos 0xfc"]


def _tos_compare(ns: str, tool: str, args) -> None:
    """xt's TOS target is only allowed in the mangle table (the vectors use filter INPUT):
    both sides run the rule in mangle INPUT."""
    family = "ip6" if tool == "ip6tables" else "ip"
    args = ["-t", "mangle", *args]
    script = f"{tool} " + " ".join(shlex.quote(a) for a in args) + "\n"
    _reset(ns)
    _load_iptables(ns, tool, args)
    xt = _tos_received(ns, family, TOS_VALUES)
    netns.run([tool, "-t", "mangle", "-F"], ns=ns)
    _reset(ns)
    _load_fwc(ns, script)
    ours = _tos_received(ns, family, TOS_VALUES)
    _reset(ns)
    assert ours == xt, [(hex(v), hex(a), hex(b)) for v, a, b in zip(TOS_VALUES, xt, ours) if a != b]
    assert xt != TOS_VALUES or "--xor-tos 0" in script, "the TOS target changed nothing"


@pytest.mark.parametrize("case", _cases("libxt_TOS.txlate") if TXLATE.exists() else [],
                         ids=lambda c: c.id)
def test_tos_vectors_same_bytes_as_xt_tos(ns, case):
    """libxt_TOS.txlate: upstream writes only the DSCP field (and nft 1.0.6 refuses its
    `ip6 dscp set ip6 dscp and X`); fwc changes exactly the bits xt_TOS changes."""
    _tos_compare(ns, case.tool, case.args)


@pytest.mark.parametrize("opts", TOS_V4)
def test_tos_ipv4_same_bytes_as_xt_tos(ns, opts):
    _tos_compare(ns, "iptables", ["-A", "INPUT", "-j", "TOS", *opts.split()])


def test_tos_ipv4_partial_fields_refused():
    script = "iptables -t mangle -A INPUT -j TOS --and-tos 0x12\n"
    with pytest.raises(ErrorGroup) as e:
        emit_nft(parse_iptables_script(script, "<test>"))
    assert "only some DSCP or ECN bits" in str(e.value.errors[0])


# --------------------------------------------------------------------------- CONNMARK

_MARK = re.compile(r"dport=(\d+) .*?mark=(\d+)")


def _ct_marks_after(ns: str, start_marks: dict[int, int]) -> dict[int, int]:
    """One UDP flow per destination port; its conntrack starts with the given mark (set in
    an nft output chain), then the rule under test runs (in prerouting)."""
    init = ["table ip tx2init {", " chain o {", "  type filter hook output priority -160;"]
    init += [f"  udp dport {p} ct mark set {m:#x}" for p, m in start_marks.items()]
    init += [" }", "}"]
    netns.run(["nft", "-f", "-"], input="\n".join(init) + "\n", ns=ns)
    with netns.entered(ns):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # listeners, so no ICMP error (RELATED, same conntrack) runs the rule a second time
        rxs = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in start_marks]
    try:
        for rx, port in zip(rxs, start_marks):
            rx.bind(("127.0.0.1", port))
        for port in start_marks:
            tx.sendto(b"x", ("127.0.0.1", port))
    finally:
        tx.close()
        for rx in rxs:
            rx.close()
    listing = netns.run(["conntrack", "-L", "-p", "udp"], ns=ns).stdout
    got = {}
    for line in listing.splitlines():
        m = _MARK.search(line)
        if m and int(m.group(1)) in start_marks:
            got[int(m.group(1))] = int(m.group(2))
    return got


def test_connmark_set_xmark_vector(ns):
    """libxt_CONNMARK.txlate:7 `--set-xmark 0x16/0x12`: xt sets ctmark = (ctmark & ~0x12) ^
    0x16; upstream's `ct mark xor 0x16 and 0xffffffed` clears bits 0x12 instead."""
    (case,) = [c for c in _cases("libxt_CONNMARK.txlate:7")]
    starts = {40000 + i: m for i, m in enumerate((0, 0x12, 0x16, 0xff, 0xffffffff, 0x80000004))}
    _reset(ns)
    _load_iptables(ns, case.tool, case.args)
    xt = _ct_marks_after(ns, starts)
    netns.run([case.tool, "-t", "mangle", "-F"], ns=ns)
    _reset(ns)
    netns.run(["nft", "-f", "-"], input=emit_nft(case_ruleset(case)), ns=ns)
    ours = _ct_marks_after(ns, starts)
    _reset(ns)
    assert len(xt) == len(starts)
    assert ours == xt
    assert all(xt[p] == (m & ~0x12 & 0xFFFFFFFF) ^ 0x16 for p, m in starts.items()), (xt, starts)


# --------------------------------------------------------------------------- DNAT syntax

def test_dnat_ipv6_range_vector_is_fwc_output_in_nft_1_0_6_syntax(ns):
    """libxt_DNAT.txlate:28 writes an IPv6 range with a port as `[A-B]:P`, which nft 1.0.6
    cannot parse; its grammar writes the same range as `[A]-[B]:P`.  With only that spelling
    changed, the expected rule compiles to the same bytecode as fwc's."""
    from tests.kernel.test_txlate_kernel import _bytecode, _scaffold
    (case,) = _cases("libxt_DNAT.txlate:28")
    ours = emit_nft(case_ruleset(case))
    respelled = [re.sub(r"\[([0-9a-f:]+)-([0-9a-f:]+)\]:", r"[\1]-[\2]:", e)
                 for e in case.expected]
    assert respelled != list(case.expected)
    theirs = _scaffold(ours, respelled) + "\n".join(respelled) + "\n"
    _reset(ns)
    mine_bc, theirs_bc = _bytecode(ns, ours), _bytecode(ns, theirs)
    assert any("nat dnat ip6" in ln for ln in mine_bc)
    assert mine_bc == theirs_bc
