"""Packets and cases: the shared input format of `fwc simulate` and the kernel harness.

A case starts with an empty conntrack table; its setup packets run in order, then the probe.
The JSON form is documented in README.md (`fwc simulate`).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Optional, Union

import attrs

from fwc.errors import FwcSyntaxError
from fwc.ir import L4_PROTOS, Loc

DIRECTIONS = ("in", "out", "fwd")
# default addresses per direction and family: (src, dst)
DEFAULT_ADDRS = {
    ("in", 4): ("198.51.100.10", "192.0.2.1"),
    ("out", 4): ("192.0.2.1", "198.51.100.10"),
    ("fwd", 4): ("198.51.100.10", "203.0.113.10"),
    ("in", 6): ("2001:db8:a::10", "2001:db8:f::1"),
    ("out", 6): ("2001:db8:f::1", "2001:db8:a::10"),
    ("fwd", 6): ("2001:db8:a::10", "2001:db8:b::10"),
}
DEFAULT_IFACES = {"in": ("eth0", None), "out": (None, "eth0"), "fwd": ("eth0", "eth1")}
TCP_FLAG_LETTERS = {"F": "FIN", "S": "SYN", "R": "RST", "P": "PSH", "A": "ACK", "U": "URG",
                    "E": "ECE", "C": "CWR"}

IPAddr = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


@attrs.frozen
class Packet:
    dir: str
    l3: int  # 4 | 6
    src: IPAddr
    dst: IPAddr
    proto: int
    sport: Optional[int] = None
    dport: Optional[int] = None
    flags: frozenset[str] = frozenset()  # TCP flag names (SYN ACK ...)
    payload: bytes = b""
    icmp_type: Optional[int] = None
    icmp_code: int = 0
    icmp_id: Optional[int] = None
    icmp_seq: int = 0
    quote: Optional[int] = None  # index of the setup packet an ICMP error quotes
    iif: Optional[str] = None
    oif: Optional[str] = None

    @property
    def is_icmp(self) -> bool:
        return self.proto in (1, 58)


@attrs.frozen
class Case:
    name: str
    setup: tuple[Packet, ...]
    probe: Packet


@attrs.frozen
class CaseResult:
    name: str
    verdict: str  # ACCEPT | DROP | REJECT
    ct_state: Optional[str]  # NEW ESTABLISHED RELATED INVALID UNTRACKED (None: not observed)
    setup_verdicts: tuple[str, ...] = ()
    trace: tuple[Any, ...] = ()

    def to_json(self) -> dict:
        return {"name": self.name, "verdict": self.verdict, "ct_state": self.ct_state,
                "setup_verdicts": list(self.setup_verdicts), "trace": list(self.trace)}


def _err(msg: str, where: str) -> FwcSyntaxError:
    """Located at the start of the file (a cases file relocates it to the case's object);
    `where` names the case and packet, or the option (--packet, --setup N) it came from."""
    file = "<packet>" if where.startswith("--") else where.split(":")[0]
    return FwcSyntaxError(f"{where}: {msg}", Loc(file, 1, 1))


def _names(keys) -> str:
    """Field names for a message (a library caller's dict may have keys that are not str)."""
    return ", ".join(sorted(k if isinstance(k, str) else repr(k) for k in keys))


def _default_proto(d: dict, l3: int) -> int:
    if "icmp_type" in d:
        return 1 if l3 == 4 else 58
    return 6


def packet_from_dict(d: dict, index: int = 0, previous: int = -1, where: str = "packet",
                     warnings: Optional[list] = None) -> Packet:
    """Build a Packet from its JSON form, filling the documented defaults.  A field the
    protocol has no place for is left out, with a warning appended to `warnings`."""
    if not isinstance(d, dict):
        raise _err("a packet must be a JSON object", where)
    known = {"dir", "l3", "src", "dst", "proto", "sport", "dport", "flags", "payload",
             "icmp_type", "icmp_code", "icmp_id", "icmp_seq", "quote", "iif", "oif"}
    extra = set(d) - known
    if extra:
        raise _err(f"unknown packet field(s) {_names(extra)}", where)
    direction = d.get("dir", "in")
    if direction not in DIRECTIONS:
        raise _err(f"dir must be one of in|out|fwd, not {direction!r}", where)
    l3 = d.get("l3")
    if l3 in ("ipv4", 4, "4", "ip"):
        l3 = 4
    elif l3 in ("ipv6", 6, "6", "ip6"):
        l3 = 6
    elif l3 is None:
        probe = d.get("src") or d.get("dst")
        l3 = 6 if (probe and ":" in str(probe)) else 4
        if d.get("proto") in ("icmpv6", 58, "58"):
            l3 = 6
    else:
        raise _err(f"l3 must be ipv4 or ipv6, not {l3!r}", where)
    dsrc, ddst = DEFAULT_ADDRS[(direction, l3)]
    for k in ("src", "dst"):  # (ip_address would take 1 as 0.0.0.1)
        if k in d and not isinstance(d[k], str):
            raise _err(f"{k} must be an address string, not {d[k]!r}", where)
    try:
        src = ipaddress.ip_address(d.get("src", dsrc))
        dst = ipaddress.ip_address(d.get("dst", ddst))
    except ValueError as e:
        raise _err(str(e), where) from None
    if src.version != l3 or dst.version != l3:
        raise _err("src and dst must both be of the packet's address family", where)
    proto = d.get("proto", _default_proto(d, l3))
    if isinstance(proto, str):
        if proto.isdigit():
            proto = int(proto)
        elif proto.lower() in L4_PROTOS:
            proto = L4_PROTOS[proto.lower()]
        else:
            raise _err(f"unknown protocol {proto!r}", where)
    if isinstance(proto, bool) or not isinstance(proto, int) or not 0 <= proto <= 255:
        raise _err(f"bad protocol {proto!r}", where)
    if proto == 1 and l3 == 6:
        proto = 58
    if warnings is not None:
        warnings.extend(_fields_that_cannot_apply(d, proto, where))
    flags: frozenset[str] = frozenset()
    if proto == 6:
        letters = d.get("flags", "S")
        if not isinstance(letters, str) or any(c not in TCP_FLAG_LETTERS for c in letters.upper()):
            raise _err(f"flags must be TCP letters from SAFRPUEC, not {letters!r}", where)
        flags = frozenset(TCP_FLAG_LETTERS[c] for c in letters.upper())
    sport = d.get("sport")
    dport = d.get("dport")
    if proto in PORT_PROTOS:
        sport = 40000 if sport is None else sport
        dport = 80 if dport is None else dport
        for v in (sport, dport):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
                raise _err(f"bad port {v!r}", where)
    else:
        sport = dport = None  # (left out, with a warning)
    payload = d.get("payload", "")
    if not isinstance(payload, str):
        raise _err("payload must be a string", where)
    icmp_type = _small_int(d, "icmp_type", 255, where)
    if proto in (1, 58) and icmp_type is None:
        icmp_type = 8 if proto == 1 else 128
    icmp_code = _small_int(d, "icmp_code", 255, where) or 0
    icmp_id = _small_int(d, "icmp_id", 0xFFFF, where)
    icmp_seq = _small_int(d, "icmp_seq", 0xFFFF, where) or 0
    iif, oif = DEFAULT_IFACES[direction]
    for key in ("iif", "oif"):
        if key in d and d[key] is not None and not is_iface_name(d[key]):
            raise _err(f"{key} must be an interface name, not {d[key]!r}", where)
    quote = d.get("quote")
    if quote == "prev":
        quote = previous
    if quote is not None and (isinstance(quote, bool) or not isinstance(quote, int) or
                              not 0 <= quote < index):
        raise _err("quote must be the index of an earlier setup packet, or \"prev\"", where)
    if proto not in (1, 58):  # (left out, with a warning)
        icmp_type, icmp_code, icmp_id, icmp_seq, quote = None, 0, None, 0, None
    try:
        data = payload.encode("utf-8").decode("unicode_escape").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError) as e:
        raise _err(f"payload: bad escape or character ({e.reason})", where) from None
    return Packet(
        dir=direction, l3=l3, src=src, dst=dst, proto=proto, sport=sport, dport=dport,
        flags=flags, payload=data, icmp_type=icmp_type, icmp_code=icmp_code,
        icmp_id=icmp_id if icmp_id is not None else (1 if proto in (1, 58) else None),
        icmp_seq=icmp_seq, quote=quote,
        iif=d.get("iif", iif), oif=d.get("oif", oif),
    )


PORT_PROTOS = (6, 17, 132, 33, 136)  # tcp udp sctp dccp udplite


def is_iface_name(name: Any) -> bool:
    """A name the kernel could give a link: 1-15 characters, no `/`, blank or control
    character (a NUL would end it early)."""
    return isinstance(name, str) and 0 < len(name) <= 15 and "/" not in name and \
        all(c.isprintable() and not c.isspace() for c in name)


def _fields_that_cannot_apply(d: dict, proto: int, where: str) -> list:
    """Warnings for fields the protocol has no place for (`in icmp > :22`, flags on UDP): the
    packet is simulated without them, which may not be what was asked."""
    d = {k: v for k, v in d.items() if v is not None}  # (null: the field is absent)
    name = {v: k for k, v in reversed(L4_PROTOS.items())}.get(proto, f"protocol {proto}")
    out = []
    if "flags" in d and proto != 6:
        out.append(_err(f"flags: {name} has no TCP flags (left out)", where))
    ports = [k for k in ("sport", "dport") if k in d]
    if ports and proto not in PORT_PROTOS:
        out.append(_err(f"{ports[0]}: {name} has no ports (tcp, udp, sctp, dccp and udplite "
                        "have; left out)", where))
    icmp = [k for k in ("icmp_type", "icmp_code", "icmp_id", "icmp_seq", "quote") if k in d]
    if icmp and proto not in (1, 58):
        out.append(_err(f"{icmp[0]}: {name} is not ICMP (left out)", where))
    return out


def _small_int(d: dict, key: str, top: int, where: str) -> Optional[int]:
    """d[key] as an int in 0..top (JSON numbers or digit strings), None when absent."""
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
        raise _err(f"{key} must be a number from 0 to {top}, not {v!r}", where)
    return v


def cases_from_json(data: Any, where: str = "cases", locs: Optional[list] = None,
                    warnings: Optional[list] = None) -> list[Case]:
    """Parse a list of cases, or {"cases": [...]}; `locs`: where each case starts in its file
    (errors and warnings are located there).  What is read but has no meaning (a key beside
    "cases" or beside a case's name, setup and probe, a field the packet's protocol has no
    place for) becomes a warning in `warnings`: a misspelt "setup" would otherwise be lost
    silently, and a file of recorded cases may carry their expected results."""
    found: list = []
    if isinstance(data, dict) and "cases" in data:
        if set(data) != {"cases"}:
            found.append(_err(f"field(s) {_names(set(data) - {'cases'})} beside "
                              "\"cases\" mean nothing here (left out)", where))
        data = data["cases"]
    if not isinstance(data, list):
        raise _err("expected a list of cases or {\"cases\": [...]}", where)
    cases = []
    for i, c in enumerate(data):
        mine: list = []
        try:
            cases.append(_case(c, i, where, mine))
        except FwcSyntaxError as e:
            _relocate(e, locs, i, where)
            raise
        for w in mine:
            _relocate(w, locs, i, where)
        found += mine
    if warnings is not None:
        warnings.extend(found)
    return cases


def _relocate(e, locs, i: int, where: str) -> None:
    if locs and i < len(locs):
        e.loc = locs[i]  # (the file is in the location now: not in the message)
        e.message = e.message.removeprefix(f"{where}: ")


def _case(c: Any, i: int, where: str, warnings: list) -> Case:
    here = f"{where}: case {i}"
    if not isinstance(c, dict) or "probe" not in c:
        raise _err("a case is an object with a \"probe\"", here)
    extra = set(c) - {"name", "setup", "probe"}
    if extra:
        warnings.append(_err(f"case field(s) {_names(extra)} mean nothing to the "
                             "simulator (a case has name, setup and probe; left out)", here))
    setup_raw = c.get("setup", [])
    if not isinstance(setup_raw, list):
        raise _err("setup must be a list of packets", here)
    setup = tuple(packet_from_dict(p, j, j - 1, f"{here} setup {j}", warnings)
                  for j, p in enumerate(setup_raw))
    probe = packet_from_dict(c["probe"], len(setup), len(setup) - 1, f"{here} probe", warnings)
    return Case(str(c.get("name", f"case{i}")), setup, probe)


def load_cases(path: str, warnings: Optional[list] = None) -> list[Case]:
    """The cases of file `path` ('-': standard input), read as rulesets are read: a leading
    byte-order mark skipped, a byte that is not UTF-8 located."""
    from fwc.frontends import decode_source, read_limited
    name = "<stdin>" if path == "-" else path
    try:
        text = decode_source(read_limited(path), name)
        data = json.loads(text)
    except OSError as e:
        raise FwcSyntaxError(f"cannot read cases: {e.strerror}", Loc(name)) from None
    except json.JSONDecodeError as e:
        raise FwcSyntaxError(f"invalid JSON: {e.msg}", Loc(name, e.lineno, e.colno)) from None
    return cases_from_json(data, name, _case_locs(text, data, name), warnings)


def _case_locs(text: str, data: Any, path: str) -> list:
    """Where each case object of the cases file starts (empty when that cannot be told)."""
    items = data["cases"] if isinstance(data, dict) and "cases" in data else data
    if not isinstance(items, list):
        return []
    start = text.find("[", text.find('"cases"') if isinstance(data, dict) else 0)
    dec, out, pos = json.JSONDecoder(), [], start
    try:
        for _ in items:
            pos += 1
            while text[pos] in " \t\r\n,":
                pos += 1
            _, end = dec.raw_decode(text, pos)
            line = text.count("\n", 0, pos) + 1
            out.append(Loc(path, line, pos - (text.rfind("\n", 0, pos) + 1) + 1))
            pos = end - 1
    except (json.JSONDecodeError, IndexError):
        return []
    return out
