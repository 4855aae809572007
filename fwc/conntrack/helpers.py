"""Conntrack helpers (FTP, SIP, TFTP): they read accepted packets of a connection they are
assigned to and announce expectations, so the data/media connection is RELATED.

Facts restated from the kernel's helpers: FTP only parses segments of an ESTABLISHED
connection and only a segment that starts right after a newline seen earlier in the same
direction, so the first data segment of each direction is never parsed; the address in
PORT/227/EPRT must be the sender's own.  SIP (direct media) opens RTP and RTCP expectations for
each SDP `m=` line whose `c=` address is the sender's.  TFTP expects the server's answer, from
any port, to the client's port after a read/write request.
NAT payload rewriting (nf_nat_ftp, nf_nat_sip) is not modelled.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, Optional

from fwc.conntrack.skb import Skb
from fwc.conntrack.table import ConntrackTable, Entry, Expectation

Note = Callable[[str], None]


def _expect(table: ConntrackTable, entry: Entry, l3: int, proto: int, src: Optional[int],
            dst: int, dport: int, note: Note) -> None:
    exp = Expectation(l3, proto, src, dst, dport, entry, entry.helper)
    table.expectations.append(exp)
    note(f"helper {entry.helper}: expect {exp.describe()}")


# ---------------------------------------------------------------------------- FTP

_PORT = re.compile(rb"PORT (\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})", re.I)
_PASV = re.compile(rb"227 [^(\r\n]*\((\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})\)")
_EPRT = re.compile(rb"EPRT (.)([12])\1([0-9A-Fa-f:.]+)\1(\d{1,5})\1", re.I)
_EPSV = re.compile(rb"229 [^(\r\n]*\((.)\1\1(\d{1,5})\1\)")


def _ftp_command(data: bytes, direction: int, l3: int):
    """(address or None for 'the sender', port) announced by this segment, or None."""
    if direction == 0:
        m = _PORT.match(data)
        if m and l3 == 4:
            nums = [int(x) for x in m.groups()]
            return int(ipaddress.IPv4Address(".".join(map(str, nums[:4])))), nums[4] * 256 + nums[5]
        m = _EPRT.match(data)
        if m:
            try:
                addr = ipaddress.ip_address(m.group(3).decode())
            except ValueError:
                return None
            if addr.version != l3:
                return None
            return int(addr), int(m.group(4))
    else:
        m = _PASV.match(data)
        if m and l3 == 4:
            nums = [int(x) for x in m.groups()]
            return int(ipaddress.IPv4Address(".".join(map(str, nums[:4])))), nums[4] * 256 + nums[5]
        m = _EPSV.match(data)
        if m:
            return None, int(m.group(2))
    return None


def ftp_help(table: ConntrackTable, entry: Entry, skb: Skb, note: Note) -> None:
    if skb.proto != 6 or not skb.payload or skb.ct_state != "ESTABLISHED":
        return
    d = skb.ct_dir
    after_nl = entry.helper_data.setdefault("after_nl", [False, False])
    data = skb.payload
    parse = after_nl[d]
    after_nl[d] = data.endswith(b"\n")
    if not parse:
        note(f"helper ftp: first segment of the {'reply' if d else 'original'} direction "
             "(or one not following a newline) is not parsed")
        return
    found = _ftp_command(data, d, skb.l3)
    if found is None:
        return
    addr, port = found
    sender = entry.tuples[d][2]
    if addr is not None and addr != sender:
        note("helper ftp: announced address differs from the sender's, no expectation")
        return
    other = entry.tuples[1 - d]
    _expect(table, entry, skb.l3, 6, other[2], other[3], port, note)


# ---------------------------------------------------------------------------- SIP

_SIP_REQUEST = re.compile(rb"(INVITE|UPDATE|ACK|PRACK) \S+ SIP/2\.0\r?\n")
_SIP_RESPONSE = re.compile(rb"SIP/2\.0 (1\d\d|2\d\d) ")
_SIP_CSEQ = re.compile(rb"^CSeq:[ \t]*\d+", re.M | re.I)
_SDP_CONN = re.compile(rb"^c=IN IP([46]) (\S+)", re.M)
_SDP_MEDIA = re.compile(rb"^m=(audio|video|image) (\d+) ", re.M)


def sip_help(table: ConntrackTable, entry: Entry, skb: Skb, note: Note) -> Optional[bool]:
    if skb.proto not in (6, 17) or not skb.payload:
        return None
    data = skb.payload
    if not (_SIP_REQUEST.match(data) or _SIP_RESPONSE.match(data)):
        return None
    if not _SIP_CSEQ.search(data):
        note("helper sip: message without a CSeq header -> drop (as the kernel helper)")
        return False
    conn = _SDP_CONN.search(data)
    if conn is None:
        return
    try:
        addr = ipaddress.ip_address(conn.group(2).decode())
    except ValueError:
        return
    d = skb.ct_dir
    if addr.version != skb.l3 or int(addr) != entry.tuples[d][2]:
        note("helper sip: SDP address is not the sender's (direct media), no expectation")
        return
    peer = entry.tuples[1 - d][2]
    for media in _SDP_MEDIA.finditer(data):
        port = int(media.group(2))
        for p in (port, port + 1):  # RTP and RTCP
            _expect(table, entry, skb.l3, 17, peer, int(addr), p, note)


# ---------------------------------------------------------------------------- TFTP


def tftp_help(table: ConntrackTable, entry: Entry, skb: Skb, note: Note) -> None:
    if skb.proto != 17 or len(skb.payload) < 2:
        return
    opcode = int.from_bytes(skb.payload[:2], "big")
    if opcode not in (1, 2):  # read / write request
        return
    reply = entry.tuples[1]
    _expect(table, entry, skb.l3, 17, reply[2], reply[3], reply[5], note)


# ---------------------------------------------------------------------------- NetBIOS name service


def netbios_ns_help(table: ConntrackTable, entry: Entry, skb: Skb, note: Note) -> None:
    """nf_conntrack_broadcast_help: a query the host itself sends (original direction) to the
    subnet broadcast address of one of its primary IPv4 addresses on the way out expects the
    answers of any host of that subnet, from port 137, to the query's source address and port;
    the expectation stays for several answers.  (The kernel finds the subnet by the address's
    broadcast, which network managers set and `ip addr add` only with `brd +`.)"""
    if skb.dir != "out" or skb.ct_dir != 0 or skb.l3 != 4 or skb.proto != 17:
        return
    seen = []
    for text in table.interfaces.get(skb.oif, ()):
        net = ipaddress.ip_interface(text).network
        if net.version != 4 or net.prefixlen >= 31:
            continue
        if any(net.subnet_of(n) for n in seen):
            continue  # a secondary address
        seen.append(net)
        if int(net.broadcast_address) == skb.dst:
            reply = entry.tuples[1]
            exp = Expectation(4, 17, int(net.network_address), reply[3], reply[5], entry,
                              entry.helper, src_hi=int(net.broadcast_address), sport=137,
                              permanent=True)
            table.expectations.append(exp)
            note(f"helper netbios-ns: expect {exp.describe()}")
            return
    note("helper netbios-ns: not a subnet broadcast of the outgoing interface, no expectation")


# the conntrack helpers the kernel registers: name -> (protocol numbers, families)
KERNEL_HELPERS = {
    "ftp": ({6}, ("ip", "ip6")), "tftp": ({17}, ("ip", "ip6")), "sip": ({6, 17}, ("ip", "ip6")),
    "sane": ({6}, ("ip", "ip6")), "amanda": ({17}, ("ip", "ip6")), "Q.931": ({6}, ("ip", "ip6")),
    "RAS": ({17}, ("ip", "ip6")), "irc": ({6}, ("ip",)), "pptp": ({6}, ("ip",)),
    "snmp": ({17}, ("ip",)), "netbios-ns": ({17}, ("ip",)),
}


HELPERS = {"ftp": ftp_help, "sip": sip_help, "tftp": tftp_help, "netbios-ns": netbios_ns_help}


def run_helper(table: ConntrackTable, skb: Skb, note: Note) -> bool:
    """Run the connection's helper; False when the helper drops the packet."""
    entry = skb.ct
    if entry is None or not entry.helper:
        return True
    return HELPERS[entry.helper](table, entry, skb, note) is not False
