"""Decoding nft values (`Val` words as written) by data type; symbol tables of nft names."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Callable, Optional

from fwc.errors import FwcSyntaxError
from fwc.frontends.nft_ast import FlagList, PrefixV, RangeV, Val
from fwc.ir import L4_PROTOS, AddrRange, Range

TCP_FLAG_BITS = {"fin": 1, "syn": 2, "rst": 4, "psh": 8, "ack": 16, "urg": 32, "ecn": 64,
                 "cwr": 128}
TCP_FLAG_IR = {"fin": "FIN", "syn": "SYN", "rst": "RST", "psh": "PSH", "ack": "ACK", "urg": "URG",
               "ecn": "ECE", "cwr": "CWR"}
CT_STATES = ("invalid", "established", "related", "new", "untracked")
CT_STATUS = {"expected": "EXPECTED", "seen-reply": "SEEN_REPLY", "assured": "ASSURED",
             "confirmed": "CONFIRMED", "snat": "SNAT", "dnat": "DNAT", "dying": "DYING"}
ICMP_TYPES = {
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
    "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11,
    "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15,
    "info-reply": 16, "address-mask-request": 17, "address-mask-reply": 18,
}
ICMPV6_TYPES = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
    "echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
    "mld-listener-done": 132, "mld-listener-reduction": 132, "nd-router-solicit": 133,
    "nd-router-advert": 134, "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136,
    "nd-redirect": 137, "router-renumbering": 138, "ind-neighbor-solicit": 141,
    "ind-neighbor-advert": 142, "mld2-listener-report": 143,
}
ICMP_CODES = {"net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2,
              "port-unreachable": 3, "frag-needed": 4, "net-prohibited": 9, "host-prohibited": 10,
              "admin-prohibited": 13}
ICMPV6_CODES = {"no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3,
                "port-unreachable": 4, "policy-fail": 5, "reject-route": 6}
DSCP = {"cs0": 0, "cs1": 8, "cs2": 16, "cs3": 24, "cs4": 32, "cs5": 40, "cs6": 48, "cs7": 56,
        "af11": 10, "af12": 12, "af13": 14, "af21": 18, "af22": 20, "af23": 22, "af31": 26,
        "af32": 28, "af33": 30, "af41": 34, "af42": 36, "af43": 38, "ef": 46, "be": 0,
        "lephb": 1, "va": 44}
FIB_TYPES = ("unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole",
             "unreachable", "prohibit", "throw", "nat", "xresolve")
LOG_LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warn": 4, "warning": 4, "notice": 5,
              "info": 6, "debug": 7}
SERVICES = {"ssh": 22, "http": 80, "https": 443, "domain": 53, "ftp": 21, "telnet": 23, "smtp": 25,
            "ntp": 123, "bootps": 67, "bootpc": 68, "tftp": 69, "pop3": 110, "imap": 143,
            "snmp": 161, "ldap": 389, "imaps": 993, "pop3s": 995, "submission": 587,
            "ftp-data": 20, "auth": 113, "bgp": 179, "syslog": 514, "nfs": 2049,
            "mysql": 3306, "postgresql": 5432, "http-alt": 8080}
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}

Value = object  # an IR nft value: int, Range, network, AddrRange or str


def err(v, msg: str) -> FwcSyntaxError:
    return FwcSyntaxError(msg, v.loc)


_INT = re.compile(r"0[xX]([0-9a-fA-F]+)|0([0-7]*)|([1-9][0-9]*)").fullmatch


def parse_int(text: str):
    """A number as nft 1.0.6 reads it (strtoull, base 0; kernel-checked): `0x` hex, a leading
    0 octal (`010` is 8), else decimal; None for anything else, also `08` (a port reads it
    as decimal: dec_port)."""
    m = _INT(text)
    if m is None:
        return None
    hx, octal, dec = m.groups()
    return int(hx, 16) if hx is not None else int(octal or "0", 8) if octal is not None \
        else int(dec)


def _split_range(text: str):
    """'a-b' into (a, b) when it is a range of numbers or addresses; None for words like 'echo-request'."""
    if "-" not in text:
        return None
    # addresses and numbers never contain '-', so a single dash that splits two valid halves wins
    parts = text.split("-")
    for k in range(1, len(parts)):
        lo, hi = "-".join(parts[:k]), "-".join(parts[k:])
        if lo and hi and (_looks_atomic(lo) and _looks_atomic(hi)):
            return lo, hi
    return None


def _looks_atomic(s: str) -> bool:
    if parse_int(s) is not None:
        return True
    try:
        ipaddress.ip_address(s.strip("[]"))
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- decoders


def dec_int(v, names: dict | None = None, width: int = 32) -> Value:
    if isinstance(v, RangeV):
        lo, hi = dec_int(v.lo, names, width), dec_int(v.hi, names, width)
        return _mk_range(v, lo, hi)
    if isinstance(v, PrefixV):
        raise err(v, "a prefix is not valid here")
    if not isinstance(v, Val):
        raise err(v, "expected a number")
    t = v.text
    n = parse_int(t)
    if n is None and names is not None and t.lower() in names:
        n = names[t.lower()]
    if n is None:
        r = _split_range(t) if not v.quoted else None
        if r is not None:
            return _mk_range(v, dec_int(Val(r[0], v.loc), names, width),
                             dec_int(Val(r[1], v.loc), names, width))
        if "-" in t and names is not None:
            lo, _, hi = t.partition("-")
            if lo.lower() in names and hi.lower() in names:
                return _mk_range(v, names[lo.lower()], names[hi.lower()])
        raise err(v, f"type mismatch: expected a number, got '{t}'")
    if n < 0 or n >= 1 << width:
        raise err(v, f"value {t} exceeds valid range 0-{(1 << width) - 1}")
    return n


def _mk_range(v, lo, hi) -> Range:
    if not isinstance(lo, int) or not isinstance(hi, int):
        raise err(v, "invalid range")
    if lo > hi:
        raise err(v, f"range {lo}-{hi} has a lower bound above its upper bound")
    return Range(lo, hi)


def dec_port(v) -> Value:
    if isinstance(v, Val) and not v.quoted and re.fullmatch(r"0[0-9]*[89][0-9]*", v.text):
        # not octal: nft then reads it as a service, which getaddrinfo takes as decimal
        n = int(v.text, 10)
        if n > 0xFFFF:
            raise err(v, f"port {v.text} is out of range (0-65535)")
        return n
    if isinstance(v, Val) and not v.quoted and parse_int(v.text) is None and _split_range(v.text) is None:
        try:
            return SERVICES.get(v.text.lower()) or socket.getservbyname(v.text.lower())
        except OSError:
            pass
    if isinstance(v, Val) and not v.quoted and parse_int(v.text) is None and \
            _split_range(v.text) is None and "-" not in v.text:
        name = v.text.lower()
        if name in SERVICES:
            return SERVICES[name]
        try:
            return socket.getservbyname(name)
        except OSError:
            raise err(v, f"type mismatch: expected a port number or service, got '{v.text}'")
    if isinstance(v, Val) and "-" in v.text and _split_range(v.text) is None:
        lo, _, hi = v.text.partition("-")
        return _mk_range(v, dec_port(Val(lo, v.loc)), dec_port(Val(hi, v.loc)))
    if isinstance(v, RangeV):
        return _mk_range(v, dec_port(v.lo), dec_port(v.hi))
    return dec_int(v, None, 16)


def dec_proto(v) -> Value:
    names = dict(L4_PROTOS, comp=108)
    if isinstance(v, Val) and not v.quoted and v.text.lower() not in names and parse_int(v.text) is None \
            and _split_range(v.text) is None:
        try:
            return socket.getprotobyname(v.text)
        except OSError:
            raise err(v, f"type mismatch: expected a protocol, got '{v.text}'")
    return dec_int(v, names, 8)


def dec_addr(version: int | None):
    def decode(v) -> Value:
        if isinstance(v, RangeV):
            lo, hi = decode(v.lo), decode(v.hi)
            return _addr_range(v, lo, hi)
        if isinstance(v, PrefixV):
            base = decode(v.base)
            try:
                return ipaddress.ip_network(f"{base.network_address}/{v.length}", strict=False)
            except ValueError:
                raise err(v, "invalid prefix")
        if not isinstance(v, Val):
            raise err(v, "type mismatch: expected an address")
        t = v.text
        if re.search(r"/0[0-9]", t):  # (nft's scanner refuses `10.0.0.0/08`)
            raise err(v, f"invalid prefix length in '{t}'")
        try:
            net = ipaddress.ip_network(t.strip("[]"), strict=False)
        except ValueError:
            r = _split_range(t)
            if r is None:
                raise err(v, f"type mismatch: expected an {_vname(version)} address, got '{t}'")
            return _addr_range(v, decode(Val(r[0], v.loc)), decode(Val(r[1], v.loc)))
        if version and net.version != version:
            raise err(v, f"type mismatch: expected an {_vname(version)} address, got '{t}'")
        if "/" not in t and parse_int(t) is not None:
            raise err(v, f"type mismatch: expected an {_vname(version)} address, got '{t}'")
        return net
    return decode


def _vname(version) -> str:
    return {4: "IPv4", 6: "IPv6"}.get(version, "IP")


def _addr_range(v, lo, hi):
    if not (hasattr(lo, "num_addresses") and lo.num_addresses == 1 and hi.num_addresses == 1):
        raise err(v, "invalid address range")
    a, b = lo.network_address, hi.network_address
    if a.version != b.version or a > b:
        raise err(v, "invalid address range")
    return AddrRange(a, b)


def dec_symbol(names, what: str, lower: bool = True):
    """A value that must be one of `names` (kept as the lower-case nft name)."""
    def decode(v) -> Value:
        if isinstance(v, Val) and v.text.lower() in names:
            return v.text.lower()
        if isinstance(v, Val) and parse_int(v.text) is not None:
            return parse_int(v.text)
        raise err(v, f"type mismatch: expected {what}, got '{getattr(v, 'text', '?')}'")
    return decode


def dec_ifname(v) -> Value:
    if not isinstance(v, Val):
        raise err(v, "expected an interface name")
    t = v.text
    if t == "":
        raise err(v, "empty interface name")
    if len(t) > 16:
        raise err(v, f"interface name '{t}' is longer than 15 characters")
    if t.endswith("\\*"):
        return t[:-2] + "*"  # a literal star: the IR name has no wildcard
    if t.endswith("*"):
        return t[:-1] + "+"
    if t.endswith("+"):
        # a literal '+' would read as the IR's wildcard
        from fwc.errors import Unsupported
        raise Unsupported(f"interface name '{t}' ends in a literal '+' (the IR's wildcard)", v.loc)
    return t


def dec_mac(v) -> Value:
    if isinstance(v, Val) and re.fullmatch(r"[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}", v.text):
        return ":".join(f"{int(x, 16):02x}" for x in v.text.split(":"))
    raise err(v, f"type mismatch: expected a MAC address, got '{getattr(v, 'text', '?')}'")


_DURATION_PARTS = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")


def dec_time(v) -> Value:
    """nft time (`1m30s`, `2h`, `500ms`, plain seconds) in whole seconds."""
    t = dec_time_ms(v)
    return Range(t.lo // 1000, t.hi // 1000) if isinstance(t, Range) else t // 1000


def dec_time_ms(v) -> Value:
    """nft time (`1m30s`, `2h`, `500ms`, plain seconds) in milliseconds."""
    if isinstance(v, RangeV):
        return _mk_range(v, dec_time_ms(v.lo), dec_time_ms(v.hi))
    if not isinstance(v, Val):
        raise err(v, "expected a time")
    t = v.text
    if parse_int(t) is not None:
        return parse_int(t) * 1000
    ms = _duration_ms(t)
    if ms is not None:
        return ms
    if "-" in t:  # (`33-45` too: plain seconds)
        lo, _, hi = t.partition("-")
        return _mk_range(v, dec_time_ms(Val(lo, v.loc)), dec_time_ms(Val(hi, v.loc)))
    raise err(v, f"type mismatch: expected a time, got '{t}'")


def ms_text(n: int) -> str:
    """Milliseconds as an nft time (`1m30s500ms`, `0s`)."""
    parts = []
    for unit, size in _UNITS:
        if n >= size:
            parts.append(f"{n // size}{unit}")
            n %= size
    return "".join(parts) or "0s"


_UNITS = (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1))


def canonical_duration(text: str) -> Optional[str]:
    """An nft time (`90s`, `1m30s`, `1h`, `500ms`) as nft lists it (`1m30s`), so that a text
    ruleset and the JSON the kernel lists for it (whole seconds) read the same; None when
    `text` is no such time."""
    ms = _duration_ms(text)
    if ms is None or ms >= 2**64:  # (nft: value too large)
        return None
    return ms_text(ms)


def _duration_ms(text: str) -> Optional[int]:
    """`1d2h3m4s5ms` (any of the parts, in that order) in milliseconds, else None."""
    m = _DURATION_PARTS.fullmatch(text)
    if not text or m is None:
        return None
    return sum(int(g) * unit for g, (_, unit) in zip(m.groups(), _UNITS) if g)


def dec_generic(v) -> Value:
    """Numbers, ranges, addresses; anything else is kept as its lower-case nft symbol."""
    if isinstance(v, RangeV):
        lo, hi = dec_generic(v.lo), dec_generic(v.hi)
        if isinstance(lo, int) and isinstance(hi, int):
            return _mk_range(v, lo, hi)
        if hasattr(lo, "network_address"):
            return _addr_range(v, lo, hi)
        return f"{lo}-{hi}"
    if isinstance(v, PrefixV):
        return dec_addr(None)(v)
    if isinstance(v, FlagList):
        return "|".join(str(dec_generic(x)) for x in v.items)
    if not isinstance(v, Val):
        raise err(v, "expected a value")
    t = v.text
    if v.quoted:
        return t
    n = parse_int(t)
    if n is not None:
        return n
    r = _split_range(t)
    if r is not None:
        return dec_generic(RangeV(Val(r[0], v.loc), Val(r[1], v.loc), v.loc))
    try:
        return ipaddress.ip_network(t.strip("[]"), strict=False)
    except ValueError:
        pass
    return t.lower()


Decoder = Callable[[object], Value]
