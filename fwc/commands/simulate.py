"""`fwc simulate` and `fwc explain`: run packets through a ruleset with the simulator.

Packet syntax (--packet / --setup), one packet per string:

    DIR [ip4|ip6] [PROTO] [SRC[:PORT]] [> DST[:PORT]] [KEY VALUE]...

DIR is in|out|fwd; PROTO a name or number (default tcp, icmp when `type` is given); IPv6 with a
port is written [ADDR]:PORT; a bare :PORT keeps the default address.  KEYs: flags (TCP letters
SAFRPUEC), type, code, id, seq (ICMP), iif, oif, payload (C escapes allowed), quote (index of the
setup packet an ICMP error quotes, or prev).  Omitted fields take the defaults of the JSON form.
"""

from __future__ import annotations

import argparse
import json
import linecache
import shlex
import sys
from typing import Optional

from fwc.errors import FwcSyntaxError
from fwc.ir import L4_PROTOS, Loc
from fwc.packet import Case, is_iface_name, load_cases, packet_from_dict

_KEYS = {"flags": "flags", "type": "icmp_type", "code": "icmp_code", "id": "icmp_id",
         "seq": "icmp_seq", "iif": "iif", "oif": "oif", "payload": "payload", "quote": "quote"}
_INT_KEYS = {"icmp_type", "icmp_code", "icmp_id", "icmp_seq"}


def _addr(token: str, where: str) -> tuple[Optional[str], Optional[int]]:
    """SRC / DST token -> (address or None, port or None)."""
    def port(text: str) -> int:
        if not text.isdigit():
            raise FwcSyntaxError(f"{where}: bad port {text!r}", Loc("<packet>", 1, 1))
        return int(text)
    if token.startswith("["):
        addr, bracket, rest = token[1:].partition("]")
        if not bracket or rest and not rest.startswith(":"):
            raise FwcSyntaxError(f"{where}: bad address {token!r} (an IPv6 address with a "
                                 "port is written [ADDR]:PORT)", Loc("<packet>", 1, 1))
        return addr, (port(rest[1:]) if rest else None)
    if token.count(":") == 1:  # ADDR:PORT, or :PORT alone
        addr, _, p = token.partition(":")
        return addr or None, port(p)
    if ":" in token:  # an IPv6 address, which cannot carry a port unbracketed
        import ipaddress
        try:
            ipaddress.IPv6Address(token)
        except ValueError:
            raise FwcSyntaxError(f"{where}: bad address {token!r} (an IPv6 address with a "
                                 "port is written [ADDR]:PORT)", Loc("<packet>", 1, 1)) from None
    return token, None


class _Once(argparse.Action):
    """An option that may be given once: a second one would silently replace the first."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice: one probe per run (for several "
                         "cases use --cases FILE, or --setup for the packets before it)")
        setattr(namespace, self.dest, values)


def parse_packet_text(text: str, index: int = 0, where: str = "--packet",
                      warnings: Optional[list] = None):
    """Parse the one-line packet syntax into a Packet (see the module docstring)."""
    try:
        tokens = shlex.split(text)
    except ValueError as e:
        raise FwcSyntaxError(f"{where}: {e}", Loc("<packet>", 1, 1)) from None
    if not tokens:
        raise FwcSyntaxError(f"{where}: empty packet", Loc("<packet>", 1, 1))
    tokens = [">" if t == "->" else t for t in tokens]  # `->` reads as naturally as `>`
    d: dict = {"dir": tokens.pop(0)}
    if tokens and tokens[0] in ("ip4", "ip6", "ipv4", "ipv6"):
        d["l3"] = tokens.pop(0)
    if tokens and (tokens[0].lower() in L4_PROTOS or tokens[0].isdigit()):
        d["proto"] = tokens.pop(0).lower()
    if tokens and tokens[0] not in _KEYS and tokens[0] != ">":
        a, p = _addr(tokens.pop(0), where)
        if a:
            d["src"] = a
        if p is not None:
            d["sport"] = p
    if tokens and tokens[0] == ">":
        tokens.pop(0)
        if not tokens:
            raise FwcSyntaxError(f"{where}: destination missing after '>'", Loc("<packet>", 1, 1))
        a, p = _addr(tokens.pop(0), where)
        if a:
            d["dst"] = a
        if p is not None:
            d["dport"] = p
    while tokens:
        key = tokens.pop(0)
        if key not in _KEYS or not tokens:
            raise FwcSyntaxError(f"{where}: expected one of {', '.join(_KEYS)} with a value, "
                                 f"got {key!r}", Loc("<packet>", 1, 1))
        field, value = _KEYS[key], tokens.pop(0)
        if field in _INT_KEYS:
            if not value.isdigit():
                raise FwcSyntaxError(f"{where}: {key} needs a number", Loc("<packet>", 1, 1))
            value = int(value)
        elif field == "quote" and value != "prev":
            value = int(value) if value.isdigit() else value
        d[field] = value
    if "icmp_type" in d and "proto" not in d:
        d["proto"] = "icmpv6" if d.get("l3") in ("ip6", "ipv6") or ":" in str(d.get("src", "")) \
            else "icmp"
    return packet_from_dict(d, index, index - 1, where, warnings)


def register(sub) -> None:
    for name in ("simulate", "explain"):
        p = sub.add_parser(
            name, help=("run packets through a ruleset (verdict and conntrack state)"
                        if name == "simulate" else "show how a ruleset decides one packet, "
                        "rule by rule, with the source lines"),
            description=__doc__.split("\n\n", 1)[1] if name == "simulate" else
            "Print the trace of one packet: every hook, table, chain and rule that acted, "
            "with its source line.")
        p.add_argument("ruleset", metavar="RULESET", help="iptables-save, iptables script or nft file")
        if name == "simulate":
            p.add_argument("--cases", metavar="CASES.json", help="cases file (JSON)")
            p.add_argument("--json", action="store_true", help="one JSON object per line per case")
            p.add_argument("--show-conntrack", action="store_true",
                           help="print the conntrack table after each case (conntrack -L style)")
        p.add_argument("--packet", metavar="PACKET", action=_Once,
                       help="the probe packet (see syntax above); once per run (several "
                            "cases: --cases)")
        p.add_argument("--setup", metavar="PACKET", action="append", default=[],
                       help="a packet sent before the probe (repeatable, in order)")
        p.add_argument("--tcp-loose", type=int, choices=(0, 1), default=1,
                       help="nf_conntrack_tcp_loose (default 1)")
        p.add_argument("--from", dest="src", default="auto",
                       choices=["auto", "iptables", "iptables-script", "nft", "nft-json"],
                       help="ruleset syntax (default: detect)")
        p.add_argument("--time", metavar="WHEN",
                       help="the wall clock for -m time / meta time / meta hour: "
                            "YYYY-MM-DDThh:mm[:ss] in UTC, or seconds since the epoch "
                            "(default: now)")
        p.add_argument("--iface", metavar="NAME=CIDR[,CIDR...]", action="append", default=[],
                       help="an interface of the simulated host and its addresses (repeatable; "
                            "given once, it replaces the default eth0/eth1; lo is kept)")
        p.add_argument("--default-route", metavar="NAME",
                       help="the interface packets to other networks leave by (default: the "
                            "first --iface, else eth0)")
        p.add_argument("--set", dest="set_elements", metavar="NAME=ELEMENT", action="append",
                       default=[], help="an element of set NAME (an ipset of -m set, or a named "
                       "nft set filled from outside); repeatable; fields of an element are "
                       "comma-separated (10.0.0.1,80); NAME= alone: known to be empty")
        p.add_argument("--random-draw", metavar="N", type=_non_negative, default=0,
                       help="what `numgen random mod M` draws, taken mod M (default 0): "
                            "which element of a random verdict map the packet takes")
        p.set_defaults(func=run_simulate if name == "simulate" else run_explain)


def _cases_from_args(args) -> list[Case]:
    if getattr(args, "cases", None):
        if args.packet or args.setup:
            raise FwcSyntaxError("give either --cases or --packet/--setup, not both", Loc("<args>"))
        if args.cases == "-" and args.ruleset == "-":
            raise FwcSyntaxError("stdin ('-') can be read only once: give the ruleset or the "
                                 "cases as a file", Loc("<args>"))
        found: list = []
        cases = load_cases(args.cases, found)
        _print_warnings(found)
        return cases
    if not args.packet:
        raise FwcSyntaxError("nothing to simulate: give --cases FILE or --packet PACKET",
                             Loc("<args>"))
    found = []
    setup = tuple(parse_packet_text(t, i, f"--setup {i}", found) for i, t in enumerate(args.setup))
    probe = parse_packet_text(args.packet, len(setup), "--packet", found)
    _print_warnings(found)
    return [Case("packet", setup, probe)]


def _print_warnings(found) -> None:
    from fwc.commands.translate import print_warnings
    print_warnings(found)


def _load(args):
    from fwc.frontends import load_ruleset  # the front ends are only needed here

    from fwc.backends.simulate import SimOptions, Simulator
    clock = None if getattr(args, "time", None) is None else _parse_when(args.time)
    left_out: list = []
    rs = load_ruleset(args.ruleset, args.src, warnings=left_out)
    from fwc.commands.translate import print_warnings
    print_warnings(left_out)
    host = _host_options(getattr(args, "iface", []), getattr(args, "default_route", None))
    sets: dict = {}
    for text in getattr(args, "set_elements", []):
        name, eq, elem = text.partition("=")
        if not eq or not name.strip():
            raise FwcSyntaxError(f"--set {text!r}: write NAME=ELEMENT", Loc("<args>"))
        got = sets.setdefault(name.strip(), [])
        if elem.strip():
            got.append(elem.strip())
    known = {s.name for t in rs.tables for s in t.sets}
    for name in sets:
        if name not in known:  # a typo would otherwise leave the real set empty, silently
            raise FwcSyntaxError(f"--set {name}: the ruleset has no set of that name"
                                 f" (its sets: {', '.join(sorted(known)) or 'none'})",
                                 Loc("<args>"))
    return Simulator(rs, SimOptions(tcp_loose=bool(args.tcp_loose), clock_ns=clock,
                                    random_draw=getattr(args, "random_draw", 0), sets=sets,
                                    **host))


def _host_options(ifaces: list[str], default_route: Optional[str]) -> dict:
    """--iface / --default-route as SimOptions fields (none given: the defaults)."""
    import ipaddress
    out: dict = {}
    if ifaces:
        table: dict = {}
        for text in ifaces:
            name, eq, addrs = text.partition("=")
            name = name.strip()
            if not eq or not is_iface_name(name):
                raise FwcSyntaxError(f"--iface {text!r}: write NAME=CIDR[,CIDR...]",
                                     Loc("<args>"))
            if name in table:
                raise FwcSyntaxError(f"--iface {name} given twice", Loc("<args>"))
            parsed = []
            for a in filter(None, (x.strip() for x in addrs.split(","))):
                try:
                    parsed.append(str(ipaddress.ip_interface(a)))
                except ValueError:
                    raise FwcSyntaxError(f"--iface {name}: bad address {a!r} (CIDR expected, "
                                         "e.g. 192.0.2.1/24)", Loc("<args>")) from None
            table[name] = tuple(parsed)
        table.setdefault("lo", ("127.0.0.1/8", "::1/128"))
        out["interfaces"] = table
    if default_route is not None or ifaces:
        known = out.get("interfaces") or {"eth0": (), "eth1": ()}
        others = [n for n in known if n != "lo"]
        if not others:
            raise FwcSyntaxError("--iface: the simulated host needs an interface besides lo",
                                 Loc("<args>"))
        route = default_route if default_route is not None else others[0]
        if route not in known or route == "lo":
            raise FwcSyntaxError(f"--default-route {route}: not an interface of the simulated "
                                 f"host ({', '.join(n for n in known if n != 'lo')})",
                                 Loc("<args>"))
        out["default_route"] = route
    return out


def _non_negative(text: str) -> int:
    import argparse
    try:
        n = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return n


def _parse_when(text: str) -> int:
    """--time: UTC nanoseconds."""
    import calendar
    import re
    t = text.strip()
    ns = None
    if re.fullmatch(r"\d+(\.\d{1,9})?", t):
        whole, _, frac = t.partition(".")
        ns = int(whole) * 10**9 + int((frac or "0").ljust(9, "0"))
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:Z|\+00:00)?", t)
    if m:
        y, mo, d, h, mi = (int(x) for x in m.groups()[:5])
        sec = int(m.group(6) or 0)
        try:
            import datetime
            datetime.datetime(y, mo, d, h, mi, sec)
        except ValueError:
            pass
        else:
            ns = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)) * 10**9
    if ns is None:
        raise FwcSyntaxError(f"--time {text!r}: expected YYYY-MM-DDThh:mm[:ss] (UTC) or seconds "
                             "since the epoch", Loc("<args>"))
    if ns >= 2**63:  # the kernel's clock (nft's meta time) is signed 64-bit nanoseconds
        raise FwcSyntaxError(f"--time {text!r}: out of range (the kernel's clock ends at "
                             "2262-04-11T23:47:16, 9223372036 s)", Loc("<args>"))
    return ns


def run_simulate(args) -> int:
    cases = _cases_from_args(args)
    sim = _load(args)
    lines = []  # printed only once every case ran: an error leaves no partial table
    if not args.json:
        lines.append(f"{'CASE':<28} {'VERDICT':<8} {'CT STATE':<12} SETUP\n")
    for case in cases:
        res = sim.run_case(case)
        if args.json:
            obj = res.to_json()
            if args.show_conntrack:
                obj["conntrack"] = sim.conntrack_listing()
            lines.append(json.dumps(obj) + "\n")
            continue
        setup = " ".join(res.setup_verdicts) or "-"
        lines.append(f"{res.name:<28} {res.verdict:<8} {res.ct_state or '-':<12} {setup}\n")
        if args.show_conntrack:
            for line in sim.conntrack_listing() or ["(conntrack table empty)"]:
                lines.append(f"    {line}\n")
    sys.stdout.write("".join(lines))
    return 0


def format_trace(trace) -> list[str]:
    """Readable lines for a trace, with the source line of each rule."""
    lines = []
    for e in trace:
        where = e["hook"]
        if e.get("table"):
            where += f" {e['table']} {e['chain']}"
            where += f" rule {e['rule']}" if e.get("rule") else " (policy)"
        lines.append(f"{where}: {e['action']}")
        loc = e.get("loc")
        if loc and e.get("rule"):
            file, _, rest = loc.rpartition(":")
            file, _, line = file.rpartition(":")
            src = linecache.getline(file, int(line)).strip() if line.isdigit() else ""
            lines.append(f"    {loc}: {src}" if src else f"    {loc}")
    return lines


def run_explain(args) -> int:
    cases = _cases_from_args(args)
    sim = _load(args)
    for case in cases:
        res = sim.run_case(case)
        if res.setup_verdicts:
            sys.stdout.write(f"setup: {' '.join(res.setup_verdicts)}\n")
        sys.stdout.write(f"packet: {args.packet}\n")
        for line in format_trace(res.trace):
            sys.stdout.write(line + "\n")
        sys.stdout.write(f"verdict: {res.verdict}   ct state: {res.ct_state or '-'}\n")
    return 0
