"""Reading nft expressions (`ip saddr`, `tcp dport`, `ct state`, `meta l4proto` ...) from a packet,
for the generic IR nodes FieldMatch / SetMatch / VerdictMap.

Each reader returns an int (or a str for interface names), or ABSENT when the packet lacks the
header the expression needs (nft then does not match, negated or not).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, Optional

from fwc.conntrack.skb import ICMP_PROTOS, PORT_PROTOS, Skb
from fwc.ir import L4_PROTOS, WEEKDAYS, AddrRange, Range

ABSENT = object()

CT_STATE_BITS = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
CT_STATUS_BITS = {"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 16,
                  "dnat": 32, "dying": 512}
ICMP_TYPES = {"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
              "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
              "time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13,
              "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
              "address-mask-request": 17, "address-mask-reply": 18}
ICMPV6_TYPES = {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
                "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
                "mld-listener-query": 130, "mld-listener-report": 131,
                "mld-listener-done": 132, "mld-listener-reduction": 132,
                "nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
                "nd-neighbor-advert": 136, "nd-redirect": 137, "mld2-listener-report": 143}
SYMBOLS = {"tcp flags": {"fin": 1, "syn": 2, "rst": 4, "psh": 8, "ack": 16, "urg": 32,
                         "ecn": 64, "cwr": 128},
           "ct state": CT_STATE_BITS, "ct status": CT_STATUS_BITS,
           "ct direction": {"original": 0, "reply": 1},
           "icmp type": ICMP_TYPES, "icmpv6 type": ICMPV6_TYPES,
           "meta nfproto": {"ipv4": 2, "ipv6": 10},
           "meta protocol": {"ip": 0x0800, "ip6": 0x86DD, "arp": 0x0806, "vlan": 0x8100},
           "meta pkttype": {"host": 0, "unicast": 0, "broadcast": 1, "multicast": 2, "other": 3}}
for _k in ("meta l4proto", "ip protocol", "ip6 nexthdr", "ct protocol", "ct original protocol"):
    SYMBOLS[_k] = L4_PROTOS


def _ct_state_bits(p: Skb) -> int:
    s = p.ct_state or "INVALID"
    return CT_STATE_BITS[s.lower()]


def _ct_status_bits(p: Skb):
    if p.ct is None:
        return ABSENT
    bits = 0
    for name in p.ct.status:
        bits |= CT_STATUS_BITS.get(name.lower().replace("_", "-"), 0)
    return bits


def _l4(proto: int, attr: str):
    def read(p: Skb):
        return getattr(p, attr) if p.proto == proto else ABSENT
    return read


def _l3(l3: int, attr: str):
    def read(p: Skb):
        return getattr(p, attr) if p.l3 == l3 else ABSENT
    return read


def _th(attr: str):
    def read(p: Skb):
        return getattr(p, attr) if p.proto in PORT_PROTOS else ABSENT
    return read


def _icmp(proto: int, attr: str):
    def read(p: Skb):
        return getattr(p, attr) if p.proto == proto else ABSENT
    return read


def _ct_tuple(which: int, idx: int):
    def read(p: Skb):
        return p.ct.tuples[which][idx] if p.ct is not None else ABSENT
    return read


def _master_helper(p: Skb):
    """nft's `ct helper`: the name of the helper of the connection's master (nft_ct.c)."""
    master = p.ct.master if p.ct is not None else None
    if master is None or not master.helper:
        return ABSENT
    return master.helper


def _meta_name(attr: str):
    def read(p: Skb):
        v = getattr(p, attr)
        return ABSENT if v is None else v
    return read


READERS: dict[str, Callable[[Skb], object]] = {
    "ip saddr": _l3(4, "src"), "ip daddr": _l3(4, "dst"),
    "ip6 saddr": _l3(6, "src"), "ip6 daddr": _l3(6, "dst"),
    "ip protocol": _l3(4, "proto"), "ip6 nexthdr": _l3(6, "proto"),
    "ip version": lambda p: 4 if p.l3 == 4 else ABSENT,
    "ip6 version": lambda p: 6 if p.l3 == 6 else ABSENT,
    "meta l4proto": lambda p: p.proto,
    "meta nfproto": lambda p: 2 if p.l3 == 4 else 10,
    # skb->protocol: the ethertype, also for local packets (ip_local_out sets it)
    "meta protocol": lambda p: 0x0800 if p.l3 == 4 else 0x86DD,
    "meta mark": lambda p: p.mark,
    "meta iifname": _meta_name("iif"), "iifname": _meta_name("iif"),
    # `iif`/`oif` compare the interface index the name had when the ruleset was loaded: the
    # same interface as the name (nft refuses to load one that does not exist)
    "meta iif": _meta_name("iif"), "meta oif": _meta_name("oif"),
    "meta oifname": _meta_name("oif"), "oifname": _meta_name("oif"),
    "meta length": lambda p: p.length,
    # nft's meta time is nanoseconds (values written in seconds, see to_interval); meta hour
    # the second of the day in UTC (nft_meta_hour)
    "meta time": lambda p: p.now_ns,
    "meta hour": lambda p: p.now_ns // 10**9 % 86400,
    # flags and fragment offset: a simulated packet is never a fragment and, like the
    # harness's packets, does not set DF
    "ip frag-off": lambda p: 0 if p.l3 == 4 else ABSENT,
    "ip ttl": _l3(4, "ttl"), "ip6 hoplimit": _l3(6, "ttl"),
    # the DSCP bits of the TOS byte / traffic class (nft: `ip dscp` also tests IPv4 in inet)
    "ip dscp": lambda p: p.tos >> 2 if p.l3 == 4 else ABSENT,
    "ip6 dscp": lambda p: p.tos >> 2 if p.l3 == 6 else ABSENT,
    "ip length": _l3(4, "length"),
    "th sport": _th("sport"), "th dport": _th("dport"),
    "tcp flags": _l4(6, "flags"),
    "icmp type": _icmp(1, "icmp_type"), "icmp code": _icmp(1, "icmp_code"),
    "icmpv6 type": _icmp(58, "icmp_type"), "icmpv6 code": _icmp(58, "icmp_code"),
    "ct state": _ct_state_bits, "ct status": _ct_status_bits,
    "ct mark": lambda p: p.ct.mark if p.ct is not None else ABSENT,
    "ct label": lambda p: p.ct.labels if p.ct is not None else ABSENT,
    "ct direction": lambda p: p.ct_dir if p.ct is not None else ABSENT,
    "ct helper": _master_helper,
    "ct protocol": lambda p: p.ct.proto if p.ct is not None else ABSENT,
    "ct original protocol": lambda p: p.ct.proto if p.ct is not None else ABSENT,
    "ct original saddr": _ct_tuple(0, 2), "ct original daddr": _ct_tuple(0, 3),
    "ct reply saddr": _ct_tuple(1, 2), "ct reply daddr": _ct_tuple(1, 3),
    "ct original ip saddr": _ct_tuple(0, 2), "ct original ip daddr": _ct_tuple(0, 3),
    "ct reply ip saddr": _ct_tuple(1, 2), "ct reply ip daddr": _ct_tuple(1, 3),
    "ct original proto-src": _ct_tuple(0, 4), "ct original proto-dst": _ct_tuple(0, 5),
    "ct reply proto-src": _ct_tuple(1, 4), "ct reply proto-dst": _ct_tuple(1, 5),
}
for _proto, _pname in ((6, "tcp"), (17, "udp"), (132, "sctp"), (33, "dccp"), (136, "udplite")):
    READERS[f"{_pname} sport"] = _l4(_proto, "sport")
    READERS[f"{_pname} dport"] = _l4(_proto, "dport")



def _bytes_at(proto: int, start: int, size: int):
    """A header field of a protocol the model carries as raw payload (esp, ah, comp): nft loads
    it at the transport header; a packet too short for it does not match, as in the kernel."""
    def read(p: Skb):
        if p.proto != proto or len(p.payload) < start + size:
            return ABSENT
        return int.from_bytes(p.payload[start:start + size], "big")
    return read


for _name, _proto, _fields in (
        ("esp", 50, {"spi": (0, 4), "sequence": (4, 4)}),
        ("ah", 51, {"nexthdr": (0, 1), "hdrlength": (1, 1), "reserved": (2, 2), "spi": (4, 4),
                    "sequence": (8, 4)}),
        ("comp", 108, {"nexthdr": (0, 1), "flags": (1, 1), "cpi": (2, 2)})):
    for _f, (_at, _size) in _fields.items():
        READERS[f"{_name} {_f}"] = _bytes_at(_proto, _at, _size)

# IPv6 extension headers: the packet model carries none (nor does the harness send any), so
# `exthdr X exists` is false for IPv6 packets and every field of them absent; nft's implicit
# `meta nfproto ipv6` makes IPv4 packets absent too
EXTHDRS = ("hbh", "rt", "rt0", "rt2", "srh", "frag", "dst", "mh")


def _exthdr_present(p: Skb):
    return 0 if p.l3 == 6 else ABSENT


def _absent(p: Skb):
    return ABSENT


def reader(expr: str) -> Optional[Callable[[Skb], object]]:
    key = " ".join(expr.split())
    got = READERS.get(key)
    if got is None:
        words = key.split()
        if len(words) == 2 and words[0] == "exthdr" and words[1] in EXTHDRS:
            return _exthdr_present
        if len(words) >= 2 and words[0] in EXTHDRS:
            return _absent
    return got


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_DATE = r"\d{4}-\d\d-\d\d(?: \d\d:\d\d(?::\d\d)?)?"
_TIME_RANGE = re.compile(rf"^({_DATE}|[\d:]+)-({_DATE}|[\d:]+)$")


DAYS = WEEKDAYS


def _local_seconds(text: str, expr: str) -> Optional[int]:
    """A quoted `meta hour` ("10:00") or `meta time` ("2026-12-05 14:00") value as nft
    converts it: with the time zone of the process that loads it (this one)."""
    import time as _time
    if expr == "meta hour":
        m = _CLOCK.match(text)
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3) or 0) > 59:
            return None
        secs = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3) or 0)
        return (secs - _time.localtime().tm_gmtoff) % 86400
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return int(_time.mktime(_time.strptime(text, fmt)))
        except ValueError:
            continue
    return None


def time_range_ends(value: str) -> Optional[tuple[str, str]]:
    """The two ends of a quoted `meta hour` / `meta time` range ("10:00-12:00"), or None."""
    r = _TIME_RANGE.match(value)
    return (r.group(1), r.group(2)) if r else None


def to_interval(expr: str, value) -> Optional[tuple]:
    """An nft value as an inclusive (lo, hi) interval of ints (or ('str', name) for names)."""
    expr = " ".join(expr.split())
    if expr in ("meta hour", "meta time") and isinstance(value, str):
        ends = time_range_ends(value) or (value, value)
        lo, hi = (_local_seconds(x, expr) for x in ends)
        if lo is None or hi is None or lo > hi:
            return None  # (a range across midnight after the time zone: not modelled)
        return (lo * 10**9, hi * 10**9) if expr == "meta time" else (lo, hi)
    if expr == "meta day" and isinstance(value, str) and value in DAYS:
        return (DAYS.index(value), DAYS.index(value))
    if expr == "meta time":  # nft reads a number as whole seconds: [lo s, hi s] in ns
        iv = to_interval("", value) if isinstance(value, (int, Range)) else None
        return None if iv is None else (iv[0] * 10**9, iv[1] * 10**9)
    if expr == "ct label" and isinstance(value, int):  # nft names a label by its bit
        return (1 << value, 1 << value)
    if expr.startswith("fib ") and expr.split()[-1] in ("oif", "oifname"):
        # the reader gives the interface found, "" for none (nft: index 0 / an empty name)
        if value in ("missing", 0):
            return ("str", "")
        if value == "exists":
            return ("found",)
        return ("str", value) if isinstance(value, str) else None
    if expr.startswith("exthdr ") and value in ("exists", "missing"):
        return (1, 1) if value == "exists" else (0, 0)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, Range):
        return (value.lo, value.hi)
    if isinstance(value, AddrRange):
        return (int(value.lo), int(value.hi))
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return (int(value.network_address), int(value.broadcast_address))
    if isinstance(value, str):
        table = SYMBOLS.get(expr)
        if table is not None and "|" in value:  # `established|related`: the OR of the bits
            bits = 0
            for part in value.split("|"):
                iv = to_interval(expr, part.strip())
                if iv is None or iv[0] != iv[1] or not isinstance(iv[0], int):
                    return None
                bits |= iv[0]
            return (bits, bits)
        if table is not None and value.lower() in table:
            v = table[value.lower()]
            return (v, v)
        if value.isdigit():
            return (int(value), int(value))
        if expr in ("iifname", "oifname", "meta iifname", "meta oifname", "ct helper") or \
                (expr in ("meta iif", "meta oif") and not value.endswith("+")):  # (no wildcard)
            return ("str", value)
        try:
            a = ipaddress.ip_address(value)
            return (int(a), int(a))
        except ValueError:
            return None
    return None


def value_in(expr: str, v, interval: tuple) -> bool:
    if interval[0] == "found":
        return isinstance(v, str) and v != ""
    if interval[0] == "str":
        if not isinstance(v, str):
            return False
        name = interval[1]
        if name.endswith("+"):  # the IR's interface wildcard (nft's `"eth*"`; `"eth\*"` is "eth*")
            return v.startswith(name[:-1])
        return v == name
    if isinstance(v, str):
        return False
    return interval[0] <= v <= interval[1]
