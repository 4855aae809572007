"""Parsers for the values iptables options take: addresses, ports, ICMP types, marks, rates."""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from typing import Optional

from fwc.ir import AddrRange, Range

SERVICES = {
    "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "dns": 53,
    "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "www": 80, "kerberos": 88, "pop3": 110,
    "sunrpc": 111, "auth": 113, "ident": 113, "nntp": 119, "ntp": 123, "netbios-ns": 137,
    "netbios-dgm": 138, "netbios-ssn": 139, "imap": 143, "imap2": 143, "snmp": 161,
    "snmp-trap": 162, "bgp": 179, "ldap": 389, "https": 443, "microsoft-ds": 445, "isakmp": 500,
    "syslog": 514, "submission": 587, "ldaps": 636, "rsync": 873, "imaps": 993, "pop3s": 995,
    "socks": 1080, "openvpn": 1194, "ms-sql-s": 1433, "l2tp": 1701, "pptp": 1723, "nfs": 2049,
    "mysql": 3306, "ipsec-nat-t": 4500, "sip": 5060, "sip-tls": 5061, "postgresql": 5432,
    "x11": 6000, "http-alt": 8080, "webcache": 8080, "smtps": 465, "urd": 465, "git": 9418,
    "echo": 7, "discard": 9, "daytime": 13, "chargen": 19, "time": 37, "whois": 43,
    "finger": 79, "irc": 194, "rtsp": 554, "ipp": 631, "svn": 3690, "xmpp-client": 5222,
    "domain-s": 853, "mdns": 5353, "squid": 3128, "zabbix-agent": 10050, "zabbix-trapper": 10051,
}

# name -> (type, code or None)
ICMP_TYPES = {
    "any": (None, None), "echo-reply": (0, None), "pong": (0, None),
    "destination-unreachable": (3, None), "network-unreachable": (3, 0), "host-unreachable": (3, 1),
    "protocol-unreachable": (3, 2), "port-unreachable": (3, 3), "fragmentation-needed": (3, 4),
    "source-route-failed": (3, 5), "network-unknown": (3, 6), "host-unknown": (3, 7),
    "network-prohibited": (3, 9), "host-prohibited": (3, 10), "TOS-network-unreachable": (3, 11),
    "TOS-host-unreachable": (3, 12), "communication-prohibited": (3, 13),
    "host-precedence-violation": (3, 14), "precedence-cutoff": (3, 15), "source-quench": (4, None),
    "redirect": (5, None), "network-redirect": (5, 0), "host-redirect": (5, 1),
    "TOS-network-redirect": (5, 2), "TOS-host-redirect": (5, 3), "echo-request": (8, None),
    "ping": (8, None), "router-advertisement": (9, None), "router-solicitation": (10, None),
    "time-exceeded": (11, None), "ttl-exceeded": (11, None), "ttl-zero-during-transit": (11, 0),
    "ttl-zero-during-reassembly": (11, 1), "parameter-problem": (12, None),
    "ip-header-bad": (12, 0), "required-option-missing": (12, 1), "timestamp-request": (13, None),
    "timestamp-reply": (14, None), "address-mask-request": (17, None),
    "address-mask-reply": (18, None), "info-request": (15, None), "info-reply": (16, None),
}
ICMP6_TYPES = {
    "destination-unreachable": (1, None), "no-route": (1, 0), "communication-prohibited": (1, 1),
    "beyond-scope": (1, 2), "address-unreachable": (1, 3), "port-unreachable": (1, 4),
    "failed-policy": (1, 5), "reject-route": (1, 6), "packet-too-big": (2, None),
    "time-exceeded": (3, None), "ttl-exceeded": (3, None), "ttl-zero-during-transit": (3, 0),
    "ttl-zero-during-reassembly": (3, 1), "parameter-problem": (4, None), "bad-header": (4, 0),
    "unknown-header-type": (4, 1), "unknown-option": (4, 2), "echo-request": (128, None),
    "ping": (128, None), "echo-reply": (129, None), "pong": (129, None),
    "mld-listener-query": (130, None), "mld-listener-report": (131, None),
    "mld-listener-done": (132, None), "mld-listener-reduction": (132, None),
    "router-solicitation": (133, None), "router-advertisement": (134, None),
    "neighbour-solicitation": (135, None), "neighbor-solicitation": (135, None),
    "neighbour-advertisement": (136, None), "neighbor-advertisement": (136, None),
    "redirect": (137, None), "mld2-listener-report": (143, None),
}
LOG_LEVELS = {"emerg": 0, "panic": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4,
              "warn": 4, "notice": 5, "info": 6, "debug": 7}
RATE_UNITS = {"s": "second", "sec": "second", "second": "second", "m": "minute", "min": "minute",
              "minute": "minute", "h": "hour", "hour": "hour", "d": "day", "day": "day"}
DSCP_CLASSES = {
    **{f"CS{i}": i * 8 for i in range(8)},
    **{f"AF{c}{d}": c * 8 + d * 2 for c in range(1, 5) for d in range(1, 4)},
    "EF": 46, "BE": 0,
}


class ValueError_(Exception):
    """A malformed option value; the caller attaches the location."""


class UnsupportedValue(ValueError_):
    """A well-formed value fwc cannot take (a host name): exit 1, not a syntax error."""


_HOSTNAME = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?")


def parse_int(s: str, lo: int = 0, hi: int = 2**32 - 1, what: str = "number") -> int:
    """An unsigned number as xtables reads it (strtoul, base 0): 22, 0x16 and 026 are 22."""
    v = c_uint(s)
    if v is None:
        raise ValueError_(f"invalid {what} {s!r}")
    if not lo <= v <= hi:
        raise ValueError_(f"{what} {s!r} out of range {lo}-{hi}")
    return v


# the protocol names iptables knows: /etc/protocols of Debian's netbase 6.4 (iptables asks
# getprotobyname) and xtables' own list (icmpv6, ipv6-mh, mh); a name's number is stored in
# one byte, so mptcp (262) is tcp, as `iptables -p mptcp` lists it
IPTABLES_PROTOS = {
    "ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
    "egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29,
    "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43,
    "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "skip": 57,
    "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88,
    "ospf": 89, "ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108,
    "vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133, "mobility-header": 135,
    "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139, "shim6": 140, "wesp": 141,
    "rohc": 142, "ethernet": 143, "mptcp": 262 & 0xFF,
    "icmpv6": 58, "ipv6-mh": 135, "mh": 135, "all": 0,
}


_C_UINT = re.compile(r"\+?(?:0[xX]([0-9a-fA-F]+)|0([0-7]+)|(0|[1-9][0-9]*))").fullmatch


def c_uint(s: str) -> Optional[int]:
    """s as C's strtoul(s, &end, 0) reads a whole word: 0x.. hex, 0.. octal, else decimal
    (ASCII digits only, no '_': what Python's int() would also take, xtables refuses)."""
    m = _C_UINT(s)
    if m is None:
        return None
    hx, octal, dec = m.groups()
    return int(hx, 16) if hx is not None else int(octal, 8) if octal is not None else int(dec)


def parse_proto(s: str) -> int:
    """An iptables protocol (-p, --ctproto): a number (C notation, 0-255) or a name, any case
    (iptables lowercases it); 0 is every protocol."""
    low = s.lower()
    n = c_uint(low)
    if n is not None:
        if n > 255:
            raise ValueError_(f"protocol {s!r} out of range 0-255")
        return n
    if low in IPTABLES_PROTOS:
        return IPTABLES_PROTOS[low]
    raise ValueError_(f"unknown protocol {s!r}")


_V4_CIDR = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?").fullmatch


@functools.lru_cache(maxsize=4096)
def parse_addr(s: str, family: str):
    """An address with optional /prefix or /netmask, as an ip_network (host bits cleared,
    exactly as iptables does)."""
    if family == "ip":
        m = _V4_CIDR(s)
        if m is not None:  # the usual a.b.c.d[/n], without ipaddress's string parsing
            octets, plen = m.group(1, 2, 3, 4), m.group(5)
            bits = int(plen) if plen is not None else 32
            if all(len(o) == 1 or o[0] != "0" for o in octets + ((plen,) if plen else ())) and \
                    all(int(o) < 256 for o in octets) and bits <= 32:
                n = (int(octets[0]) << 24) | (int(octets[1]) << 16) | (int(octets[2]) << 8) | \
                    int(octets[3])
                mask = ((1 << bits) - 1) << (32 - bits)
                return ipaddress.IPv4Network((n & mask, bits))
    if "/" in s:
        addr, mask = s.split("/", 1)
    else:
        addr, mask = s, None
    if family == "ip":
        addr = _xt_dotted(addr, False) or addr
        if mask is not None and "." in mask:
            mask = _xt_dotted(mask, True) or mask
    if mask is not None and _null_mask(mask):
        # xtables ignores the name when the mask is null ("any/0", the old scripts' "0/0")
        return ipaddress.ip_network("0.0.0.0/0" if family == "ip" else "::/0")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        if _HOSTNAME.fullmatch(addr):  # iptables resolves names when it loads the rule
            raise UnsupportedValue(f"host name {addr!r}: fwc does not resolve names (the "
                                   "addresses could change); write the addresses") from None
        raise ValueError_(f"invalid address {s!r}") from None
    if (ip.version == 4) != (family == "ip"):
        raise ValueError_(f"address {s!r} is not {'IPv4' if family == 'ip' else 'IPv6'}")
    bits = ip.max_prefixlen
    if mask is not None:
        if mask.isdigit():
            bits = parse_int(mask, 0, ip.max_prefixlen, "prefix length")
        else:
            try:
                m = int(ipaddress.ip_address(mask))
            except ValueError:
                raise ValueError_(f"invalid netmask in {s!r}") from None
            inv = (~m) & ((1 << ip.max_prefixlen) - 1)
            if inv & (inv + 1):
                raise ValueError_(f"non-contiguous netmask {mask!r} is not supported")
            bits = ip.max_prefixlen - inv.bit_length()
    return ipaddress.ip_network(f"{ip}/{bits}", strict=False)


def _xt_dotted(text: str, is_mask: bool) -> Optional[str]:
    """An IPv4 address as xtables reads its numeric form: each part a C number (010 is octal
    8, 0x0a is 10) below 256, and, except in a mask, a short address completed with zeros
    (10.1 is 10.1.0.0, 0x0a is 10.0.0.0); None when it is not one (iptables then takes it
    for a host name)."""
    parts = text.split(".")
    values = [c_uint(p) for p in parts]
    if len(parts) > 4 or (is_mask and len(parts) != 4) or \
            any(v is None or v > 255 for v in values):
        return None
    return ".".join(str(v) for v in values + [0] * (4 - len(values)))


def _null_mask(mask: str) -> bool:
    if mask.isdigit():
        return int(mask) == 0
    try:
        return int(ipaddress.ip_address(mask)) == 0
    except ValueError:
        return False


def parse_addr_range(s: str, family: str) -> AddrRange:
    if "-" not in s:
        raise ValueError_(f"invalid address range {s!r} (expected A-B)")
    a, b = s.split("-", 1)
    lo, hi = parse_addr(a, family).network_address, parse_addr(b, family).network_address
    if lo > hi:
        raise EmptyRange(f"empty address range {s!r}")
    return AddrRange(lo, hi)


def parse_port(s: str) -> int:
    if c_uint(s) is not None:
        return parse_int(s, 0, 65535, "port")
    if s in SERVICES:
        return SERVICES[s]
    try:
        return socket.getservbyname(s)
    except OSError:
        raise ValueError_(f"invalid port or unknown service {s!r}") from None


class EmptyRange(ValueError_):
    """min > max: iptables refuses it for some modules; for others the kernel keeps it and it
    matches no value (the caller decides)."""


def parse_port_range(s: str) -> Range:
    """`p`, `a:b`, `:b`, `a:` (iptables also accepts '-' in multiport)."""
    sep = ":" if ":" in s else None
    if sep is None:
        p = parse_port(s)
        return Range(p, p)
    a, b = s.split(sep, 1)
    lo = parse_port(a) if a else 0
    hi = parse_port(b) if b else 65535
    if lo > hi:
        raise EmptyRange(f"invalid port range {s!r} (min > max)")
    return Range(lo, hi)


def parse_value_mask(s: str, what: str = "mark") -> tuple[int, int]:
    if "/" in s:
        v, m = s.split("/", 1)
        return parse_int(v, what=what), parse_int(m, what=f"{what} mask")
    return parse_int(s, what=what), 0xFFFFFFFF


def parse_rate(s: str) -> tuple[int, str]:
    if "/" in s:
        n, unit = s.split("/", 1)
    else:
        n, unit = s, "second"
    if unit.lower() not in RATE_UNITS:
        raise ValueError_(f"invalid rate unit in {s!r}")
    if not (n.isascii() and n.isdigit()):  # libxt_limit reads the number with atoi (decimal)
        raise ValueError_(f"invalid rate {s!r}")
    return parse_int(str(int(n)), 1, 10**9, "rate"), RATE_UNITS[unit.lower()]


def parse_icmp(s: str, family: str) -> tuple:
    """-> (type or None, (code_lo, code_hi))."""
    table = ICMP_TYPES if family == "ip" else ICMP6_TYPES
    if s in table:
        t, c = table[s]
        return t, (0, 255) if c is None else (c, c)
    if s[:1].isdigit():
        t, slash, c = s.partition("/")
        tv = parse_int(t, 0, 255, "ICMP type")
        if slash and not c:
            raise ValueError_(f"missing ICMP code after '/' in {s!r}")
        if c:
            cv = parse_int(c, 0, 255, "ICMP code")
            return tv, (cv, cv)
        return tv, (0, 255)
    raise ValueError_(f"unknown ICMP{'v6' if family == 'ip6' else ''} type {s!r}")


def parse_log_level(s: str) -> int:
    if s.isdigit():
        return parse_int(s, 0, 7, "log level")
    if s.lower() in LOG_LEVELS:
        return LOG_LEVELS[s.lower()]
    raise ValueError_(f"invalid log level {s!r}")


def parse_mac(s: str) -> str:
    parts = s.split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise ValueError_(f"invalid MAC address {s!r}")
    return ":".join(p.lower().zfill(2) for p in parts)


# ----------------------------------------------------------------------------- long-tail modules

U32_MAX = 2**32 - 1


def parse_uint_range(s: str, hi_max: int = U32_MAX, what: str = "value") -> Range:
    """`n`, `a:b`, `a:` or `:b` (xtables' UINT32RC), inclusive; an inverted range is an error."""
    if ":" not in s:
        v = parse_int(s, 0, hi_max, what)
        return Range(v, v)
    a, b = s.split(":", 1)
    lo = parse_int(a, 0, hi_max, what) if a else 0
    hi = parse_int(b, 0, hi_max, what) if b else hi_max
    if lo > hi:
        raise ValueError_(f"empty {what} range {s!r}")
    return Range(lo, hi)


def parse_daytime(s: str) -> int:
    """hh:mm[:ss] -> seconds since midnight (xt_time --timestart/--timestop)."""
    parts = s.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError_(f"invalid time of day {s!r} (expected hh:mm[:ss])")
    h, m = int(parts[0]), int(parts[1])
    sec = int(parts[2]) if len(parts) == 3 else 0
    if h > 23 or m > 59 or sec > 59:
        raise ValueError_(f"time of day {s!r} out of range")
    return h * 3600 + m * 60 + sec


def parse_date(s: str) -> int:
    """YYYY[-MM[-DD[Thh[:mm[:ss]]]]] in UTC -> seconds since the epoch (xt_time --datestart)."""
    import calendar
    import re
    m = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2})(?:T(\d{1,2})(?::(\d{1,2})(?::(\d{1,2}))?)?)?)?)?",
                     s)
    if not m:
        raise ValueError_(f"invalid date {s!r} (expected YYYY[-MM[-DD[Thh[:mm[:ss]]]]])")
    y, mo, d, h, mi, se = (int(g) if g else dflt for g, dflt in zip(m.groups(), (0, 1, 1, 0, 0, 0)))
    if not (1970 <= y and 1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]
            and h <= 23 and mi <= 59 and se <= 59):
        raise ValueError_(f"date {s!r} out of range")
    t = calendar.timegm((y, mo, d, h, mi, se, 0, 0, 0))
    if t > 2**31 - 1:
        raise ValueError_(f"date {s!r} is after 2038-01-19 03:14:07 (xt_time's limit)")
    return t


def parse_addr_or_masked(s: str, family: str, field: str):
    """Like parse_addr, but a non-contiguous netmask (10.11.12.13/255.0.255.0) gives the exact
    masked comparison FieldMatch("ip saddr", (10.0.12.0,), mask=0xff00ff00) instead of an error."""
    try:
        return parse_addr(s, family)
    except ValueError_ as e:
        if "non-contiguous" not in str(e):
            raise
    from fwc.ir import FieldMatch
    addr, mask = s.split("/", 1)
    ip, m = ipaddress.ip_address(addr), int(ipaddress.ip_address(mask))
    # (the address's own class: ip_address(1) would be IPv4 0.0.0.1 for ::1/::ffff)
    value = ipaddress.ip_network(type(ip)(int(ip) & m))
    return FieldMatch(f"{family} {field}", (value,), mask=m)
