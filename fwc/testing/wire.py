"""Bytes on the wire for the kernel harness: IPv4/IPv6 + TCP/UDP/ICMP with correct checksums.

Only struct/socket.  TCP sequence numbers come from a per-case `Flows` table so that setup
packets and the probe form a consistent stream: conntrack tracks windows and marks packets
with out-of-window numbers INVALID.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Optional

from fwc.packet import Packet

TCP_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10,
                 "URG": 0x20, "ECE": 0x40, "CWR": 0x80}
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
ETH_P_SENTINEL = 0x88B5  # IEEE "local experimental": no kernel handler, never filtered by netfilter
ICMP_ERROR_TYPES = {4: frozenset({3, 4, 5, 11, 12}), 6: frozenset({1, 2, 3, 4})}
TTL = 64


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(l3: int, src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if l3 == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def _with_checksum(segment: bytes, offset: int, pseudo: bytes) -> bytes:
    csum = checksum(pseudo + segment)
    if csum == 0 and offset == 6:  # UDP: an all-zero checksum means "none"
        csum = 0xFFFF
    return segment[:offset] + struct.pack("!H", csum) + segment[offset + 2:]


def ip_header(l3: int, src: bytes, dst: bytes, proto: int, payload_len: int, ident: int = 0) -> bytes:
    if l3 == 4:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident & 0xFFFF, 0,
                          TTL, proto, 0, src, dst)
        return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    # the flow label carries the probe's tag, as the IPv4 ID does: NAT rewrites neither
    return struct.pack("!IHBB16s16s", (6 << 28) | (ident & 0xFFFFF), payload_len, proto, TTL,
                       src, dst)


class Flows:
    """Per-case TCP sequence state: each endpoint's next sequence number."""

    def __init__(self) -> None:
        self._next: dict[tuple, int] = {}
        self._isn = 1_000_000

    def _endpoint(self, addr, port) -> tuple:
        return (str(addr), port)

    def numbers(self, pkt: Packet) -> tuple[int, int]:
        """(seq, ack) for this packet; advances the sender's sequence number."""
        me = self._endpoint(pkt.src, pkt.sport)
        peer = self._endpoint(pkt.dst, pkt.dport)
        key_me, key_peer = (me, peer), (peer, me)
        if key_me not in self._next:
            self._next[key_me] = self._isn
            self._isn += 1_000_000
        seq = self._next[key_me]
        ack = 0
        if "ACK" in pkt.flags:
            if key_peer not in self._next:
                # NAT: the peer's side of this flow was sent under other addresses/ports
                # (to me from a translated endpoint, or by the peer to my translated one)
                nat = [k for k in self._next if k != key_me and (k[1] == me or k[0] == peer)]
                others = [k for k in self._next if k != key_me]
                if not nat and len(others) == 1:  # both ends translated: the case's one flow
                    nat = others
                if nat:
                    self._next[key_peer] = self._next[nat[-1]]
            if key_peer not in self._next:  # mid-stream pickup: invent the peer's number
                self._next[key_peer] = self._isn
                self._isn += 1_000_000
            ack = self._next[key_peer]
        advance = len(pkt.payload) + ("SYN" in pkt.flags) + ("FIN" in pkt.flags)
        self._next[key_me] = (seq + advance) & 0xFFFFFFFF
        return seq, ack


def l4_segment(pkt: Packet, src: bytes, dst: bytes, flows: Flows,
               quoted: Optional[bytes]) -> bytes:
    proto = pkt.proto
    if proto == 6:
        seq, ack = flows.numbers(pkt)
        flags = sum(TCP_FLAG_BITS[f] for f in pkt.flags)
        seg = struct.pack("!HHIIBBHHH", pkt.sport, pkt.dport, seq, ack, 5 << 4, flags,
                          65535, 0, 0) + pkt.payload
        return _with_checksum(seg, 16, _pseudo_header(pkt.l3, src, dst, 6, len(seg)))
    if proto in (17, 136):  # UDP, UDP-Lite (checksum over everything: coverage 0)
        seg = struct.pack("!HHHH", pkt.sport, pkt.dport, 8 + len(pkt.payload), 0) + pkt.payload
        if proto == 136:
            seg = seg[:4] + b"\0\0" + seg[6:]
        return _with_checksum(seg, 6, _pseudo_header(pkt.l3, src, dst, proto, len(seg)))
    if proto in (1, 58):
        if quoted is not None:
            rest = b"\0\0\0\0" + quoted
        else:
            rest = struct.pack("!HH", pkt.icmp_id or 0, pkt.icmp_seq) + pkt.payload
        msg = struct.pack("!BBH", pkt.icmp_type, pkt.icmp_code, 0) + rest
        pseudo = b"" if proto == 1 else _pseudo_header(6, src, dst, 58, len(msg))
        return _with_checksum(msg, 2, pseudo)
    if proto in (132, 33) and pkt.sport is not None:  # SCTP/DCCP: ports first, no valid checksum
        return struct.pack("!HH", pkt.sport, pkt.dport) + b"\0" * 8 + pkt.payload
    return pkt.payload


def ip_packet(pkt: Packet, flows: Flows, quoted: Optional[bytes] = None, ident: int = 0) -> bytes:
    """The IP datagram for `pkt`; `quoted` is the earlier datagram an ICMP error quotes."""
    src, dst = pkt.src.packed, pkt.dst.packed
    if quoted is not None:
        quoted = quote_slice(quoted)
    seg = l4_segment(pkt, src, dst, flows, quoted)
    return ip_header(pkt.l3, src, dst, pkt.proto, len(seg), ident) + seg


def quote_slice(datagram: bytes) -> bytes:
    """What an ICMP error quotes: the IP header plus the first 8 bytes of its payload."""
    hlen = (datagram[0] & 0x0F) * 4 if datagram[0] >> 4 == 4 else 40
    return datagram[:hlen + 8]


def ether(dst_mac: bytes, src_mac: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst_mac + src_mac + struct.pack("!H", ethertype) + payload


def parse_ip(datagram: bytes) -> Optional[tuple]:
    """(l3, src, dst, proto, l4 bytes) of an IPv4/IPv6 datagram, or None."""
    if not datagram:
        return None
    version = datagram[0] >> 4
    if version == 4 and len(datagram) >= 20:
        hlen = (datagram[0] & 0x0F) * 4
        return (4, ipaddress.IPv4Address(datagram[12:16]), ipaddress.IPv4Address(datagram[16:20]),
                datagram[9], datagram[hlen:])
    if version == 6 and len(datagram) >= 40:
        return (6, ipaddress.IPv6Address(datagram[8:24]), ipaddress.IPv6Address(datagram[24:40]),
                datagram[6], datagram[40:])
    return None


def l4_matches(pkt: Packet, proto: int, l4: bytes) -> bool:
    """Does an L4 segment carry `pkt`'s ports (or ICMP type/id)?"""
    if proto != pkt.proto:
        return False
    if pkt.sport is not None and len(l4) >= 4:
        return struct.unpack("!HH", l4[:4]) == (pkt.sport, pkt.dport)
    if pkt.is_icmp and len(l4) >= 2:
        return l4[0] == pkt.icmp_type and l4[1] == pkt.icmp_code
    return True


def is_same_datagram(pkt: Packet, datagram: bytes) -> bool:
    parsed = parse_ip(datagram)
    if parsed is None:
        return False
    l3, src, dst, proto, l4 = parsed
    return l3 == pkt.l3 and src == pkt.src and dst == pkt.dst and l4_matches(pkt, proto, l4)


def is_tagged_datagram(pkt: Packet, datagram: bytes, ident: int) -> bool:
    """Is `datagram` the probe `pkt` sent with tag `ident`, possibly NATed (addresses and ports
    rewritten)?  The tag is the IPv4 ID / IPv6 flow label; protocol and TCP flags must agree."""
    if not datagram or ident == 0:
        return False
    version = datagram[0] >> 4
    if version == 4 and len(datagram) >= 20:
        tag, proto = struct.unpack("!H", datagram[4:6])[0], datagram[9]
        l4 = datagram[(datagram[0] & 0x0F) * 4:]
        want = ident & 0xFFFF
    elif version == 6 and len(datagram) >= 40:
        tag, proto = struct.unpack("!I", datagram[0:4])[0] & 0xFFFFF, datagram[6]
        l4 = datagram[40:]
        want = ident & 0xFFFFF
    else:
        return False
    if version != pkt.l3 or proto != pkt.proto or tag != want:
        return False
    if proto == 6 and len(l4) >= 14:
        return l4[13] & 0x3F == sum(TCP_FLAG_BITS[f] for f in pkt.flags) & 0x3F
    if pkt.is_icmp and len(l4) >= 2:
        return l4[0] == pkt.icmp_type
    return True


def is_rejection_of(pkt: Packet, datagram: bytes) -> bool:
    """Is `datagram` a TCP RST or an ICMP error answering `pkt`?"""
    parsed = parse_ip(datagram)
    if parsed is None:
        return False
    l3, src, dst, proto, l4 = parsed
    if l3 != pkt.l3 or dst != pkt.src:
        return False
    if proto == 6 and pkt.proto == 6 and len(l4) >= 14:
        sport, dport = struct.unpack("!HH", l4[:4])
        return src == pkt.dst and (sport, dport) == (pkt.dport, pkt.sport) and bool(l4[13] & 0x04)
    icmp = 1 if l3 == 4 else 58
    if proto == icmp and len(l4) >= 8 and l4[0] in ICMP_ERROR_TYPES[l3]:
        return is_same_datagram(pkt, l4[8:])
    return False


def answers_probe(pkt: Packet, probe: bytes, ident: int, datagram: bytes) -> bool:
    """Is `datagram` (sent by the firewall) a rejection of exactly the probe `probe` (the
    datagram as sent, tag `ident`)?  An ICMP error must quote the probe's tag; a TCP RST must
    go back to the probe's source port and carry the sequence numbers REJECT derives from the
    probe.  Errors about earlier packets (a neighbour that never answered) do not count."""
    parsed = parse_ip(datagram)
    if parsed is None:
        return False
    l3, _src, dst, proto, l4 = parsed
    if l3 != pkt.l3 or dst != pkt.src:
        return False
    if proto == 6 and pkt.proto == 6 and len(l4) >= 14 and l4[13] & 0x04:
        sent = parse_ip(probe)
        if sent is None or len(sent[4]) < 20:
            return False
        p4 = sent[4]
        if struct.unpack("!H", l4[2:4])[0] != pkt.sport:
            return False
        seq, ack = struct.unpack("!II", l4[4:12])
        p_seq, p_ack = struct.unpack("!II", p4[4:12])
        p_flags = p4[13]
        if p_flags & 0x10:  # the probe had ACK: the RST takes its sequence from the probe's ack
            return seq == p_ack
        seg_len = len(p4) - (p4[12] >> 4) * 4 + (p_flags & 0x01) + ((p_flags >> 1) & 0x01)
        return bool(l4[13] & 0x10) and ack == (p_seq + seg_len) & 0xFFFFFFFF
    icmp = 1 if l3 == 4 else 58
    if proto == icmp and len(l4) >= 8 and l4[0] in ICMP_ERROR_TYPES[l3]:
        return is_tagged_datagram(pkt, l4[8:], ident)
    return False
