"""Conntrack helpers (FTP, SIP, TFTP): they read accepted packets of a connection they are
assigned to and announce expectations, so the data/media connection is RELATED.

Facts restated from the kernel's helpers: FTP only parses segments of an ESTABLISHED
connection and only a segment that starts right after a newline seen earlier in the same
direction, so the first data segment of each direction is never parsed; the address in
PORT/227/EPRT must be the sender's own.  SIP (direct media) opens RTP and RTCP expectations for
each SDP `m=` line whose `c=` address is the sender's.  TFTP expects the server's answer, from
any port, to the client's port after a read/write request.
An FTP/TFTP data connection of a NATed master follows the master's NAT (table.Entry.follow);
the NAT helpers' payload rewriting is not modelled, nor nf_nat_sip.
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Optional

from fwc.conntrack.skb import Skb
from fwc.conntrack.table import ConntrackTable, Entry, Expectation

Note = Callable[[str], None]


def _same(a: Expectation, b: Expectation) -> bool:
    return (a.l3, a.proto, a.src, a.dst, a.dport, a.sport, a.src_hi) == \
        (b.l3, b.proto, b.src, b.dst, b.dport, b.sport, b.src_hi) and a.master.zone == b.master.zone


def _expect(table: ConntrackTable, entry: Entry, l3: int, proto: int, src: Optional[int],
            dst: int, dport: int, note: Note, max_expected: Optional[int] = None,
            cls: int = 0, follow: Optional[int] = None) -> bool:
    """Register an expectation (nf_ct_expect_related): one of the same master for the same
    connection is replaced; one of another master makes it fail (False: the ftp and tftp
    helpers then drop the packet); with `max_expected` (the helper's expect policy) the
    master's oldest one goes first when it has that many."""
    exp = Expectation(l3, proto, src, dst, dport, entry, entry.helper, cls=cls)
    if follow is not None and entry.status & {"SNAT", "DNAT"}:
        exp.follow = follow  # (nf_nat_ftp / nf_nat_tftp: only for a NATed master)
    for old in list(table.expectations):
        if _same(old, exp):
            if old.master is not entry:
                note(f"helper {entry.helper}: another connection already expects "
                     f"{exp.describe()} -> drop, as the kernel helper")
                return False
            table.expectations.remove(old)
    if max_expected is not None:
        mine = [e for e in table.expectations if e.master is entry and e.cls == cls]
        for old in mine[:max(0, len(mine) - max_expected + 1)]:
            table.expectations.remove(old)
            note(f"helper {entry.helper}: expectation {old.describe()} replaced (at most "
                 f"{max_expected} per connection)")
    table.expectations.append(exp)
    note(f"helper {entry.helper}: expect {exp.describe()}")
    return True


# ---------------------------------------------------------------------------- FTP
# nf_conntrack_ftp restated: a segment that starts right after a newline is compared, case
# blind, with PORT/EPRT (client) or "227 "/"229 " (server); a segment that begins like the
# pattern but whose numbers cannot be read ("partial") is dropped.  Numbers are read without
# range checks (an address by shifts in 32 bits, a port in 16).

_DIGITS = range(0x30, 0x3A)


def _numbers(data: bytes, n: int, sep: int, term: Optional[int]) -> Optional[list[int]]:
    """n numbers separated by `sep`, ended by `term` (None: by any other byte), or None."""
    out, i = [0] * n, 0
    for ch in data:
        if i >= n:
            return None
        if ch in _DIGITS:
            out[i] = (out[i] * 10 + ch - 0x30) & 0xFFFFFFFF
        elif ch == sep:
            i += 1
        else:
            return out if (term is None or ch == term) and i == n - 1 else None
    return None  # (the data ended before a terminator)


def _port_upto(data: bytes, start: int, delim: int) -> Optional[int]:
    port = 0
    for ch in data[start:]:
        if ch == delim:
            return port or None
        if ch not in _DIGITS:
            return None
        port = (port * 10 + ch - 0x30) & 0xFFFF
    return None


def _quad(nums: list[int]) -> int:
    """An IPv4 address from four numbers, by shifts in 32 bits (no range checks)."""
    return ((nums[0] << 24) | (nums[1] << 16) | (nums[2] << 8) | nums[3]) & 0xFFFFFFFF


def _rfc959(data: bytes, l3: int, term: Optional[int]):
    nums = _numbers(data, 6, 0x2C, term)
    if nums is None:
        return None
    return _quad(nums), ((nums[4] << 8) | nums[5]) & 0xFFFF


def _rfc1123(data: bytes, l3: int, term):
    """227: the numbers start at the first digit, parentheses or not."""
    first = next((k for k, ch in enumerate(data) if ch in _DIGITS), None)
    return None if first is None else _rfc959(data[first:], l3, None)


def _good_delim(ch: int) -> bool:
    return 33 <= ch <= 126 and ch not in _DIGITS


def _eprt(data: bytes, l3: int, term):
    if len(data) <= 3 or not _good_delim(data[0]) or data[2] != data[0]:
        return None
    delim = data[0]
    if data[1] != (0x31 if l3 == 4 else 0x32):
        return None
    if l3 == 4:
        nums = _numbers(data[3:], 4, 0x2E, delim)
        if nums is None:
            return None
        addr = _quad(nums)
        length = data.index(delim, 3) - 3
    else:
        end = data.find(bytes([delim]), 3)
        text = data[3:end] if end > 3 else b""
        try:  # (in6_pton takes no scope id: `fe80::1%eth0` is no address)
            addr = int(ipaddress.IPv6Address(text.decode("ascii"))) \
                if text and b"%" not in text else None
        except (ValueError, UnicodeDecodeError):
            addr = None
        if addr is None:
            return None
        length = end - 3
    port = _port_upto(data, 3 + length + 1, delim)
    return None if port is None else (addr, port)


def _epsv(data: bytes, l3: int, term):
    if len(data) <= 3 or not _good_delim(data[0]) or data[1] != data[0] or data[2] != data[0]:
        return None
    port = _port_upto(data, 3, data[0])
    return None if port is None else (None, port)


# per direction: (pattern, byte to skip to or None, terminator, reader)
_FTP_SEARCH = (
    ((b"PORT", 0x20, 0x0D, _rfc959), (b"EPRT", 0x20, 0x0D, _eprt)),
    ((b"227 ", None, None, _rfc1123), (b"229 ", 0x28, 0x29, _epsv)),
)


def _find_pattern(data: bytes, pattern: bytes, skip, term, read, l3: int):
    """1 and (address or None, port); 0 (no match); -1 (partial: the kernel drops it)."""
    plen = len(pattern)
    if len(data) <= plen:
        return (-1, None) if data.lower() == pattern[:len(data)].lower() else (0, None)
    if data[:plen].lower() != pattern.lower():
        return 0, None
    i = plen
    if skip is not None:
        at = data.find(bytes([skip]), plen)
        if at < 0:
            return -1, None
        i = at + 1
    got = read(data[i:], l3, term)
    return (1, got) if got is not None else (-1, None)


def _ftp_command(data: bytes, direction: int, l3: int):
    """(found, (address or None for 'the sender', port)): found 1, 0 or -1 as above."""
    for pattern, skip, term, read in _FTP_SEARCH[direction]:
        found, got = _find_pattern(data, pattern, skip, term, read, l3)
        if found:
            return found, got
    return 0, None


def ftp_help(table: ConntrackTable, entry: Entry, skb: Skb, note: Note) -> Optional[bool]:
    if skb.proto != 6 or not skb.payload or skb.ct_state != "ESTABLISHED":
        return None
    d = skb.ct_dir
    after_nl = entry.helper_data.setdefault("after_nl", [False, False])
    data = skb.payload
    if not after_nl[d]:
        after_nl[d] = data.endswith(b"\n")
        note(f"helper ftp: first segment of the {'reply' if d else 'original'} direction "
             "(or one not following a newline) is not parsed")
        return None
    found, got = _ftp_command(data, d, skb.l3)
    if found == -1:
        # (a dropped segment leaves the newline record as it was: its retransmission is parsed)
        note("helper ftp: partial match of a command (numbers missing or unreadable) -> drop, "
             "as the kernel helper")
        return False
    after_nl[d] = data.endswith(b"\n")
    if found == 0:
        return None
    addr, port = got
    sender = entry.tuples[d][2]
    if addr is not None and addr != sender:
        note("helper ftp: announced address differs from the sender's, no expectation")
        return None
    other = entry.tuples[1 - d]
    if not _expect(table, entry, skb.l3, 6, other[2], other[3], port, note, max_expected=1,
                   follow=d):
        return False
    return None


# ---------------------------------------------------------------------------- SIP

# nf_conntrack_sip restated: a request is handled by its method (INVITE, UPDATE, ACK, PRACK
# read SDP; INVITE and BYE first drop the call's media expectations), a response by the
# method its CSeq names (INVITE, UPDATE, PRACK: SDP in a 1xx/2xx answer, a final error drops
# the media expectations); lines end in CRLF; SDP counts from its `v=` line; each of up to
# three m= lines (audio, video, image) expects RTP and RTCP from the peer to the address its
# c= line gives, when that is the sender's own (direct media).  REGISTER is not modelled.

_SIP_HANDLERS = (b"INVITE", b"UPDATE", b"ACK", b"PRACK", b"BYE", b"REGISTER")
_SIP_RESPONSES = (b"INVITE", b"UPDATE", b"PRACK", b"REGISTER")
_SDP_CLASSES = {b"audio ": (1, 4), b"video ": (2, 4), b"image ": (3, 1)}  # class, max_expected


def _strtoul(data: bytes, at: int) -> tuple[int, int]:
    """simple_strtoul(data + at): (value, end); blanks first, as the kernel's skips them."""
    k = at
    while k < len(data) and data[k] in b" \t":
        k += 1
    start = k
    while k < len(data) and data[k] in _DIGITS:
        k += 1
    return (int(data[start:k]) if k > start else 0), k


def _header(lines: list[bytes], name: bytes, short: Optional[bytes] = None):
    """(line index, value offset) of the first `Name:` header (case blind), or None."""
    names = {name.lower()} | ({short.lower()} if short else set())
    for i, ln in enumerate(lines):
        if not ln:
            return None  # (the blank line: the body follows)
        head, colon, _rest = ln.partition(b":")
        if colon and head.strip().lower() in names:
            return i, len(head) + 1
    return None


def _flush_media(table: ConntrackTable, entry: Entry, note: Note) -> None:
    gone = [e for e in table.expectations if e.master is entry and e.cls != 0]
    for e in gone:
        table.expectations.remove(e)
    if gone:
        note(f"helper sip: {len(gone)} media expectation(s) of this call removed")


def _sdp(table: ConntrackTable, entry: Entry, skb: Skb, lines: list[bytes], note: Note):
    """process_sdp: False to drop the message, else None."""
    try:
        v = next(k for k, ln in enumerate(lines) if ln.startswith(b"v="))
    except StopIteration:
        return None  # no session description
    want = b"c=IN IP4 " if skb.l3 == 4 else b"c=IN IP6 "
    media = [k for k in range(v, len(lines)) if lines[k].startswith(b"m=")]

    def conn(lo: int, hi: int):
        for ln in lines[lo:hi]:
            if ln.startswith(want):
                try:
                    return ipaddress.ip_address(ln[len(want):].split()[0].decode())
                except (ValueError, IndexError, UnicodeDecodeError):
                    return None
        return None
    session = conn(v, media[0] if media else len(lines))
    d = skb.ct_dir
    done = 0
    for j, k in enumerate(media):
        if done == len(_SDP_CLASSES):
            break
        body = lines[k][2:]
        kind = next((t for t in _SDP_CLASSES if body.startswith(t)), None)
        if kind is None:
            continue
        port, _ = _strtoul(body, len(kind))
        if port == 0:
            continue  # an inactive stream
        if port < 1024 or port > 65535:
            note(f"helper sip: SDP media port {port} -> drop, as the kernel helper")
            return False
        addr = conn(k + 1, media[j + 1] if j + 1 < len(media) else len(lines)) or session
        if addr is None:
            note("helper sip: SDP media without a connection address -> drop")
            return False
        done += 1
        if addr.version != skb.l3 or int(addr) != entry.tuples[d][2]:
            note("helper sip: SDP address is not the sender's (direct media), no expectation")
            continue
        cls, most = _SDP_CLASSES[kind]
        peer = entry.tuples[1 - d][2]
        for p in (port, port + 1):  # RTP and RTCP
            _expect(table, entry, skb.l3, 17, peer, int(addr), p, note, max_expected=most,
                    cls=cls)
    return None


def _sip_message(table: ConntrackTable, entry: Entry, skb: Skb, msg: bytes, note: Note):
    # headers are found after \n as well as \r\n; the SDP is read in CRLF lines only (a body
    # of \n-ended lines gives no expectation: observed in the kernel)
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in msg.split(b"\n")]
    sdp_lines = msg.split(b"\r\n")
    info = entry.helper_data
    if msg[:8].lower() == b"sip/2.0 ":
        if len(msg) < len(b"SIP/2.0 200"):
            return None
        code, _ = _strtoul(msg, 8)
        at = _header(lines, b"CSeq")
        if not code or at is None:
            note("helper sip: response without a status code or CSeq -> drop")
            return False
        cseq, end = _strtoul(lines[at[0]], at[1])
        if not cseq:
            return False
        method = lines[at[0]][end + 1:].upper()
        handler = next((h for h in _SIP_RESPONSES if method.startswith(h)), None)
        if handler in (b"INVITE", b"UPDATE", b"PRACK"):
            if 100 <= code <= 299:
                return _sdp(table, entry, skb, sdp_lines, note)
            if info.get("invite_cseq") == cseq:
                _flush_media(table, entry, note)
        return None
    handler = next((h for h in _SIP_HANDLERS if msg[:len(h)].upper() == h), None)
    if handler is None:
        return None
    at = _header(lines, b"CSeq")
    cseq = _strtoul(lines[at[0]], at[1])[0] if at is not None else 0
    if not cseq:
        note("helper sip: message without a CSeq header -> drop (as the kernel helper)")
        return False
    if handler == b"BYE":
        _flush_media(table, entry, note)
        return None
    if handler == b"REGISTER":
        return None
    if handler == b"INVITE":
        _flush_media(table, entry, note)
    got = _sdp(table, entry, skb, sdp_lines, note)
    if got is None and handler == b"INVITE":
        info["invite_cseq"] = cseq
    return got


def _tcp_messages(data: bytes) -> list[bytes]:
    """sip_help_tcp's framing: each message ends Content-Length bytes after the blank line
    that must follow its Content-Length header; without one nothing more is read."""
    out = []
    while True:
        lines = data.split(b"\r\n")
        at = _header(lines, b"Content-Length", b"l")
        if at is None:
            return out
        start = sum(len(ln) + 2 for ln in lines[:at[0]]) + at[1]
        clen, end = _strtoul(data, start)
        if end == start or data[end:end + 4] != b"\r\n\r\n":
            return out
        end += 4 + clen
        out.append(data[:end])
        data = data[end:]
        if not data:
            return out


class HelperNotModelled(Exception):
    """What a helper would do here is not modelled (the simulator refuses the case)."""


def sip_help(table: ConntrackTable, entry: Entry, skb: Skb, note: Note) -> Optional[bool]:
    if skb.proto not in (6, 17) or not skb.payload:
        return None
    if entry.status & {"SNAT", "DNAT"}:
        # nf_nat_sip rewrites the message's addresses and its SDP, and NATs the media
        # expectations: which RTP flows become RELATED then is not modelled
        raise HelperNotModelled("the SIP helper on a NATed connection (nf_nat_sip rewrites "
                                "the SIP message and its SDP) is not simulated")
    if skb.proto == 6:
        if skb.ct_state != "ESTABLISHED" or len(skb.payload) < len(b"SIP/2.0 200"):
            return None
        messages = _tcp_messages(skb.payload)
    else:
        messages = [skb.payload]
    for msg in messages:
        if _sip_message(table, entry, skb, msg, note) is False:
            return False
    return None


# ---------------------------------------------------------------------------- TFTP


def tftp_help(table: ConntrackTable, entry: Entry, skb: Skb, note: Note) -> Optional[bool]:
    if skb.proto != 17 or len(skb.payload) < 2:
        return None
    opcode = int.from_bytes(skb.payload[:2], "big")
    if opcode not in (1, 2):  # read / write request
        return None
    reply = entry.tuples[1]
    if not _expect(table, entry, skb.l3, 17, reply[2], reply[3], reply[5], note, max_expected=1,
                   follow=0):
        return False
    return None


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


HELPERS = {"ftp": ftp_help, "sip": sip_help, "tftp": tftp_help, "netbios-ns": netbios_ns_help}


def run_helper(table: ConntrackTable, skb: Skb, note: Note) -> bool:
    """Run the connection's helper; False when the helper drops the packet."""
    entry = skb.ct
    if entry is None or not entry.helper:
        return True
    return HELPERS[entry.helper](table, entry, skb, note) is not False
