"""Name resolution and type checking: syntax tree -> resolved rules (PRule).

Every name lives in one namespace; its kind (addresses, service, zone, interfaces) decides
where it may be used, and using it elsewhere is a located error with a hint.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Callable, Optional

import attrs

from fwc.errors import FwcSyntaxError
from fwc.ir import AddrRange, Limit, Log, Loc, NatTarget, Range
from fwc.policy import names as N
from fwc.policy.ast import ChainDecl, Clause, Definition, HelperDecl, Include, RuleStmt, Tok
from fwc.policy.parser import RESERVED, _strip_comment, parse, physical_lines, suggest

# symbol kinds
ADDRS, SERVICE, ZONE, IFACES = "addresses", "service", "zone", "interfaces"
KIND_OF_DEF = {"host": ADDRS, "network": ADDRS, "set": ADDRS, "service": SERVICE,
               "zone": ZONE}
KIND_WORD = {ADDRS: "an address list", SERVICE: "a service", ZONE: "a zone",
             IFACES: "an interface list"}


@attrs.frozen
class SvcAtom:
    """One protocol/port or ICMP type; ports None = the whole protocol; for ICMP, family
    ('ip'|'ip6') is set and icmp_type None = every type."""

    proto: int
    ports: Optional[Range] = None
    family: Optional[str] = None
    icmp_type: Optional[int] = None


@attrs.define
class PRule:
    action: str  # accept drop reject masquerade snat dnat redirect
    loc: Loc
    source_line: str = ""
    text: str = ""
    reject_with: Optional[str] = None
    saddr: Optional[list] = None
    daddr: Optional[list] = None
    iif: Optional[list] = None
    oif: Optional[list] = None
    services: Optional[list] = None
    states: Optional[frozenset] = None
    status: Optional[frozenset] = None
    log: Optional[Log] = None
    limit: Optional[Limit] = None
    comment: Optional[str] = None
    target: Optional[NatTarget] = None


@attrs.define
class PChain:
    name: str  # input output forward nat
    policy: str
    stateless: bool
    rules: list
    loc: Loc


@attrs.define
class PHelper:
    name: str
    services: list
    loc: Loc


@attrs.frozen
class Warning_:
    message: str
    loc: Loc

    def format(self) -> str:
        return f"{self.loc}: warning: {self.message}"


@attrs.define
class Symbol:
    kind: str
    decl: str  # host network set service zone define
    loc: Loc
    values: tuple
    resolved: object = None
    resolving: bool = False


def _err(msg: str, tok_or_loc, source: Optional[str] = None) -> FwcSyntaxError:
    loc = tok_or_loc.loc if isinstance(tok_or_loc, (Tok, Clause)) else tok_or_loc
    return FwcSyntaxError(msg, loc, source)


class Resolver:
    def __init__(self, read: Callable[[str], str]):
        self.read = read
        self.symbols: dict[str, Symbol] = {}
        self.chains: dict[str, PChain] = {}
        self.helpers: list[PHelper] = []
        self.warnings: list[Warning_] = []
        self.sources: dict[str, list[str]] = {}
        self._including: list[str] = []
        self._pending: list[ChainDecl] = []

    # ------------------------------------------------------------------ files

    def source_line(self, loc: Loc) -> Optional[str]:
        lines = self.sources.get(loc.file)
        if lines and 0 < loc.line <= len(lines):
            return lines[loc.line - 1]
        return None

    def error(self, msg: str, at) -> FwcSyntaxError:
        loc = at.loc if isinstance(at, (Tok, Clause)) else at
        return FwcSyntaxError(msg, loc, self.source_line(loc))

    def load(self, text: str, file: str) -> None:
        self.sources[file] = physical_lines(text)
        self._including.append(file)
        try:
            for stmt in parse(text, file):
                if isinstance(stmt, Definition):
                    self.define(stmt)
                elif isinstance(stmt, Include):
                    self.include(stmt, file)
                elif isinstance(stmt, HelperDecl):
                    self.helpers.append(PHelper(stmt.name.text, [stmt], stmt.loc))
                elif isinstance(stmt, ChainDecl):
                    self._pending.append(stmt)
        finally:
            self._including.pop()

    def finish(self) -> None:
        """After every file is read: check every definition (used or not), then the chains,
        so rules may name objects defined further down or in a later include."""
        for name, sym in self.symbols.items():
            if sym.kind == ADDRS:
                self.symbol_addrs(sym, name)
            elif sym.kind == SERVICE:
                self.symbol_services(sym, name)
            else:
                self.symbol_ifaces(sym, name)
        for decl in self._pending:
            self.chain(decl)

    def include(self, stmt: Include, file: str) -> None:
        base = os.path.dirname(file) if not file.startswith("<") else "."
        path = os.path.normpath(os.path.join(base, stmt.path.text))
        if path in self._including:
            raise self.error(f"include cycle: {path} includes itself", stmt.path)
        try:
            text = self.read(path)
        except OSError as e:
            raise self.error(f"cannot include \"{stmt.path.text}\": {e.strerror}",
                             stmt.path) from None
        self.load(text, path)

    # ------------------------------------------------------------------ definitions

    def define(self, d: Definition) -> None:
        name = d.name.text.lstrip("$")
        if name in RESERVED:
            raise self.error(f"'{name}' is a reserved word and cannot be a name", d.name)
        if name in self.symbols:
            prev = self.symbols[name]
            raise self.error(f"duplicate definition of '{name}' (first defined at {prev.loc})",
                             d.name)
        kind = KIND_OF_DEF.get(d.kind)
        if kind is None:  # define: the kind follows from the values
            kind = self._infer_kind(d)
        self.symbols[name] = Symbol(kind, d.kind, d.name.loc, d.values)

    def _infer_kind(self, d: Definition) -> str:
        kinds = set()
        for v in d.values:
            if v.kind == "addr":
                kinds.add(ADDRS)
            elif v.kind == "svc":
                kinds.add(SERVICE)
            elif v.kind == "name":
                sym = self.symbols.get(v.text.lstrip("$"))
                if sym is not None:
                    kinds.add(IFACES if sym.kind == ZONE else sym.kind)
                elif v.text in N.BUILTIN_SERVICES or v.text in ("icmp", "icmpv6"):
                    kinds.add(SERVICE)  # (those two are keywords: no interface has the name)
                else:
                    kinds.add(IFACES)
            else:
                raise self.error(f"'{v.text}' cannot be a value of define", v)
        if len(kinds) != 1:
            raise self.error("define mixes " + " and ".join(KIND_WORD[k] for k in sorted(kinds))
                             + "; use one kind of value per name", d.name)
        return kinds.pop()

    def lookup(self, tok: Tok, want: tuple[str, ...], role: str) -> Optional[Symbol]:
        name = tok.text.lstrip("$")
        sym = self.symbols.get(name)
        if sym is None:
            return None
        if sym.kind not in want:
            raise self.error(f"'{name}' is {KIND_WORD[sym.kind]} ({sym.decl} at {sym.loc}), "
                             f"but {role}", tok)
        return sym

    def undefined(self, tok: Tok, want: tuple[str, ...], extra=()) -> FwcSyntaxError:
        name = tok.text.lstrip("$")
        choices = [n for n, s in self.symbols.items() if s.kind in want] + list(extra)
        return self.error(f"undefined name '{name}'{suggest(name, choices)}", tok)

    # ------------------------------------------------------------------ values

    def addr_literal(self, tok: Tok, strict: bool = True):
        text = tok.text
        try:
            if "-" in text and "/" not in text:
                lo, hi = (ipaddress.ip_address(p) for p in text.split("-", 1))
                if lo.version != hi.version or lo > hi:
                    raise ValueError("range ends must be one family, low to high")
                return AddrRange(lo, hi)
            return ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            if "host bits set" in str(e):
                net = ipaddress.ip_network(text, strict=False)
                raise self.error(f"{text} has host bits set (did you mean {net}?)",
                                 tok) from None
            raise self.error(f"invalid address '{text}': {e}", tok) from None

    def symbol_addrs(self, sym: Symbol, name: str) -> list:
        if sym.resolved is not None:
            return sym.resolved
        if sym.resolving:
            raise self.error(f"'{name}' is defined in terms of itself", sym.loc)
        sym.resolving = True
        out = []
        for v in sym.values:
            if v.kind == "addr":
                a = self.addr_literal(v)
                if sym.decl == "host" and (isinstance(a, AddrRange) or a.num_addresses != 1):
                    raise self.error(f"host '{name}' takes single addresses, not {v.text}; "
                                     "use network or set", v)
                out.append(a)
            elif v.kind == "name":
                ref = self.lookup(v, (ADDRS,), f"{sym.decl} '{name}' takes addresses")
                if ref is None:
                    raise self.undefined(v, (ADDRS,))
                out.extend(self.symbol_addrs(ref, v.text))
            else:
                raise self.error(f"'{v.text}' is a service, but {sym.decl} '{name}' takes "
                                 "addresses", v)
        sym.resolving = False
        sym.resolved = out = list(dict.fromkeys(out))  # (`s2 = s1, s1` must not double)
        return out

    def symbol_services(self, sym: Symbol, name: str) -> list:
        if sym.resolved is not None:
            return sym.resolved
        if sym.resolving:
            raise self.error(f"'{name}' is defined in terms of itself", sym.loc)
        sym.resolving = True
        out = []
        for v in sym.values:
            out.extend(self.service_tok(v, f"service '{name}' takes services"))
        sym.resolving = False
        sym.resolved = out = list(dict.fromkeys(out))
        return out

    def symbol_ifaces(self, sym: Symbol, name: str) -> list:
        if sym.resolved is not None:
            return sym.resolved
        if sym.resolving:
            raise self.error(f"'{name}' is defined in terms of itself", sym.loc)
        sym.resolving = True
        out = []
        for v in sym.values:
            if v.kind != "name":
                raise self.error(f"'{v.text}' is not an interface name; {sym.decl} '{name}' "
                                 "takes interface names", v)
            ref = self.symbols.get(v.text.lstrip("$"))
            if ref is not None and ref.kind in (ZONE, IFACES):
                out.extend(self.symbol_ifaces(ref, v.text))
            else:
                out.append(self.iface_name(v))
        sym.resolving = False
        sym.resolved = out = list(dict.fromkeys(out))
        return out

    def iface_name(self, tok: Tok) -> str:
        name = tok.text.lstrip("$")
        if name.endswith("*"):
            name = name[:-1] + "+"
        # (15 characters at most, a trailing + or * included: nft and iptables refuse more)
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,15}\+?", name) or len(name) > 15:
            raise self.error(f"invalid interface name '{name}' (at most 15 characters, a "
                             "wildcard included)", tok)
        return name

    def service_text(self, text: str, tok: Tok) -> list[SvcAtom]:
        proto, _, rest = text.partition("/")
        proto = proto.lower()
        if proto in ("icmp", "icmpv6", "ipv6-icmp"):
            fam = "ip" if proto == "icmp" else "ip6"
            table = N.ICMP_TYPES if fam == "ip" else N.ICMPV6_TYPES
            return [SvcAtom(1 if fam == "ip" else 58, None, fam, self.icmp_type(rest, table, tok))]
        if proto not in N.PORT_PROTOS:
            if proto in N.PROTOCOLS:
                raise self.error(f"protocol {proto} has no ports; write just '{proto}'", tok)
            raise self.error(f"unknown protocol '{proto}'{suggest(proto, N.PORT_PROTOS)}", tok)
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", rest)
        if not m:
            raise self.error(f"invalid port '{rest}' in {text}: expected a number or range "
                             "like 1024-65535", tok)
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if not (0 <= lo <= hi <= 65535):
            raise self.error(f"invalid port range {rest}: ports are 0-65535, low to high", tok)
        return [SvcAtom(N.PORT_PROTOS[proto], Range(lo, hi))]

    def icmp_type(self, text: str, table: dict, tok: Tok) -> int:
        if text.isdigit() and int(text) <= 255:
            return int(text)
        if text in table:
            return table[text]
        raise self.error(f"unknown ICMP{'v6' if table is N.ICMPV6_TYPES else ''} type "
                         f"'{text}'{suggest(text, table)}", tok)

    def service_tok(self, v: Tok, role: str) -> list[SvcAtom]:
        if v.kind == "svc":
            return self.service_text(v.text, v)
        if v.kind == "addr":
            raise self.error(f"{v.text} is an address; write 'from {v.text}' or "
                             f"'to {v.text}'", v)
        if v.kind == "number":
            raise self.error(f"a bare number is not a service: write tcp/{v.text} or "
                             f"udp/{v.text}", v)
        sym = self.lookup(v, (SERVICE,), role)
        if sym is not None:
            return self.symbol_services(sym, v.text)
        name = v.text.lstrip("$")
        if name in N.BUILTIN_SERVICES:
            return [a for part in N.BUILTIN_SERVICES[name].split(", ")
                    for a in self.service_text(part, v)]
        if name.lower() in N.PROTOCOLS:
            p = N.PROTOCOLS[name.lower()]
            if p in (1, 58):
                return [SvcAtom(p, None, "ip" if p == 1 else "ip6", None)]
            return [SvcAtom(p)]
        raise self.undefined(v, (SERVICE,), list(N.BUILTIN_SERVICES) + list(N.PORT_PROTOS)
                             + ["from", "to", "iif", "oif", "state", "log", "rate", "comment",
                                "with", "icmp", "icmpv6"])

    # ------------------------------------------------------------------ chains and rules

    def chain(self, c: ChainDecl) -> None:
        name = c.direction.text
        if name in self.chains:
            raise self.error(f"duplicate '{name}' chain (first declared at "
                             f"{self.chains[name].loc}); put all its rules in one block",
                             c.direction)
        policy = "accept"
        if c.policy is not None:
            if name == "nat":
                raise self.error("the nat block has no policy", c.policy)
            if c.policy.text not in ("accept", "drop"):
                raise self.error(f"policy must be accept or drop, not '{c.policy.text}'"
                                 f"{suggest(c.policy.text, ('accept', 'drop'))}", c.policy)
            policy = c.policy.text
        stateless = False
        for o in c.options:
            if o.text not in N.CHAIN_OPTIONS:
                raise self.error(f"unknown chain option '{o.text}'"
                                 f"{suggest(o.text, N.CHAIN_OPTIONS)}", o)
            stateless = True
        if stateless and name == "nat":
            raise self.error("the nat block has no options", c.options[0])
        chain = PChain(name, policy, stateless, [], c.loc)
        for r in c.rules:
            chain.rules.append(self.rule(r, name))
        self.chains[name] = chain

    def rule(self, r: RuleStmt, chain: str) -> PRule:
        action = "accept" if r.action.text == "allow" else r.action.text
        nat = action in ("masquerade", "snat", "dnat", "redirect")
        if chain == "nat" and not nat:
            raise self.error(f"'{r.action.text}' does not belong in the nat block: use "
                             "masquerade, snat, dnat or redirect", r.action)
        if chain != "nat" and nat:
            raise self.error(f"'{action}' belongs in the nat block ('nat {{ ... }}')", r.action)
        pr = PRule(action, r.loc, r.source_line, _strip_comment(r.source_line).strip())
        seen: dict[str, Clause] = {}
        for cl in r.clauses:
            key = "svc" if cl.kind in ("svc", "icmp", "icmpv6") else cl.kind
            if key in seen and key != "svc":
                raise self.error(f"'{cl.kind}' given twice in one rule (also at "
                                 f"{seen[key].loc}); list the values after one '{cl.kind}'",
                                 cl)
            seen[key] = cl
            self.clause(pr, cl, chain)
        self.target(pr, r)
        self.check_rule(pr, r, chain, seen)
        return pr

    def _ct_names(self, cl, known, what: str) -> frozenset:
        """Conntrack state or status names of a clause, upper-cased; unknown ones are errors."""
        for v in cl.values:
            if v.text.lower() not in known:
                raise self.error(f"unknown conntrack {what} '{v.text}'"
                                 f"{suggest(v.text.lower(), known)}", v)
        return frozenset(v.text.upper() for v in cl.values)

    def clause(self, pr: PRule, cl: Clause, chain: str) -> None:
        k = cl.kind
        if k in ("from", "to"):
            addrs, ifaces = [], []
            for v in cl.values:
                if v.kind == "addr":
                    addrs.append(self.addr_literal(v))
                    continue
                if v.kind == "svc":
                    raise self.error(f"'{v.text}' is a service, but '{k}' takes addresses, "
                                     f"hosts, networks, sets or zones; write the service "
                                     f"without '{k}'", v)
                sym = self.lookup(v, (ADDRS, ZONE), f"'{k}' takes addresses, hosts, networks, "
                                  "sets or zones")
                if sym is None:
                    raise self.undefined(v, (ADDRS, ZONE))
                if sym.kind == ZONE:
                    ifaces.extend(self.symbol_ifaces(sym, v.text))
                else:
                    addrs.extend(self.symbol_addrs(sym, v.text))
            if addrs and ifaces:
                raise self.error(f"'{k}' mixes zones and addresses; write the zone with "
                                 f"{'iif' if k == 'from' else 'oif'} instead", cl)
            if ifaces:
                self.set_ifaces(pr, "iif" if k == "from" else "oif", ifaces, cl, chain)
            else:
                setattr(pr, "saddr" if k == "from" else "daddr", addrs)
        elif k in ("iif", "oif"):
            ifaces = []
            for v in cl.values:
                if v.kind != "name":
                    raise self.error(f"'{v.text}' is not an interface; '{k}' takes interface "
                                     "or zone names", v)
                sym = self.lookup(v, (ZONE, IFACES), f"'{k}' takes interface or zone names")
                if sym is not None:
                    ifaces.extend(self.symbol_ifaces(sym, v.text))
                else:
                    name = self.iface_name(v)
                    zones = [n for n, s in self.symbols.items() if s.kind == ZONE]
                    hint = suggest(name, zones)
                    if hint:
                        self.warnings.append(Warning_(
                            f"'{name}' is used as an interface name, not a zone{hint}", v.loc))
                    ifaces.append(name)
            self.set_ifaces(pr, k, ifaces, cl, chain)
        elif k in ("svc", "icmp", "icmpv6"):
            atoms = pr.services if pr.services is not None else []
            if k == "svc":
                for v in cl.values:
                    atoms.extend(self.service_tok(v, "a service belongs here"))
            else:
                fam = "ip" if k == "icmp" else "ip6"
                table = N.ICMP_TYPES if k == "icmp" else N.ICMPV6_TYPES
                if not cl.values:
                    atoms.append(SvcAtom(1 if k == "icmp" else 58, None, fam, None))
                for v in cl.values:
                    atoms.append(SvcAtom(1 if k == "icmp" else 58, None, fam,
                                         self.icmp_type(v.text, table, v)))
            pr.services = atoms
        elif k == "state":
            pr.states = self._ct_names(cl, N.CT_STATE_NAMES, "state")
        elif k == "status":
            pr.status = self._ct_names(cl, N.CT_STATUS_NAMES, "status")
        elif k == "log":
            prefix = None
            level = None
            vals = list(cl.values)
            if vals and vals[0].kind == "string":
                prefix = vals.pop(0).text
                if len(prefix.encode()) > 127:  # (nft's limit is in bytes of UTF-8)
                    raise self.error("log prefix is longer than 127 bytes", cl)
            if vals:  # level NAME
                lv = vals[-1]
                if lv.text not in N.LOG_LEVELS:
                    raise self.error(f"unknown log level '{lv.text}'"
                                     f"{suggest(lv.text, N.LOG_LEVELS)}", lv)
                level = N.LOG_LEVELS[lv.text]
            pr.log = Log(prefix=prefix, level=level)
        elif k == "rate":
            v = cl.values[0]
            num, unit = v.text.split("/")
            if unit not in N.RATE_UNITS:
                raise self.error(f"unknown rate unit '{unit}'{suggest(unit, N.RATE_UNITS)}", v)
            n = int(num)
            if n <= 0:
                raise self.error("a rate must be at least 1", v)
            if n > 0xFFFFFFFF:  # (nft's limit takes a 32-bit-sized rate in practice)
                raise self.error("a rate over 4294967295 per unit", v)
            burst = 5
            if len(cl.values) > 2:
                burst = int(cl.values[2].text)
                if not 0 < burst <= 0xFFFFFFFF:
                    raise self.error("burst must be 1 to 4294967295", cl.values[2])
            pr.limit = Limit(n, N.RATE_UNITS[unit], burst)
        elif k == "comment":
            pr.comment = cl.values[0].text
            if len(pr.comment.encode()) > 128:
                raise self.error("comment is longer than 128 bytes", cl)
        elif k == "with":
            if pr.action != "reject":
                raise self.error(f"'with' only follows reject, not {pr.action}", cl)
            v = cl.values[0]
            if v.text not in N.REJECT_TYPES:
                raise self.error(f"unknown reject type '{v.text}'"
                                 f"{suggest(v.text, N.REJECT_TYPES)}; one of "
                                 + ", ".join(N.REJECT_TYPES), v)
            pr.reject_with = v.text
        else:  # pragma: no cover - the grammar has no other clause
            raise self.error(f"unexpected '{k}'", cl)

    def set_ifaces(self, pr: PRule, which: str, ifaces: list, cl: Clause, chain: str) -> None:
        hook = chain if chain != "nat" else ("prerouting" if pr.action in ("dnat", "redirect")
                                             else "postrouting")
        if which == "iif" and hook in ("output", "postrouting"):
            raise self.error(f"{'the ' + chain if chain != 'nat' else pr.action} chain sees no "
                             "input interface; use 'oif' or 'to'", cl)
        if which == "oif" and hook in ("input", "prerouting"):
            raise self.error(f"{'the ' + chain if chain != 'nat' else pr.action} chain sees no "
                             "output interface; use 'iif' or 'from'", cl)
        prev = getattr(pr, which)
        if prev is not None:
            raise self.error(f"the {'input' if which == 'iif' else 'output'} interface is "
                             "given twice in one rule", cl)
        setattr(pr, which, list(dict.fromkeys(ifaces)))

    def target(self, pr: PRule, r: RuleStmt) -> None:
        t = r.target
        if t is None:
            if pr.action in ("snat", "dnat", "redirect"):
                raise self.error(f"{pr.action} needs a target: '-> "
                                 f"{'8080' if pr.action == 'redirect' else '192.0.2.10'}'",
                                 r.action)
            return
        if pr.action not in ("snat", "dnat", "redirect", "masquerade"):
            raise self.error(f"'->' only follows snat, dnat, redirect or masquerade", t)
        text = t.text
        addr_part, ports_part = text, None
        m = re.fullmatch(r"\[([^\]]+)\](?::(.+))?", text)
        if m:
            addr_part, ports_part = m.group(1), m.group(2)
        elif text.startswith(":"):
            addr_part, ports_part = "", text[1:]
        elif text.count(":") == 1:
            addr_part, ports_part = text.split(":")
        elif re.fullmatch(r"\d+(-\d+)?", text) and pr.action in ("redirect", "masquerade"):
            addr_part, ports_part = "", text
        addr = None
        if addr_part:
            if pr.action in ("redirect", "masquerade"):
                raise self.error(f"{pr.action} takes only ports ('-> 8080'), no address", t)
            addr = self.addr_literal(Tok("addr", addr_part, t.loc))
            if isinstance(addr, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                if addr.num_addresses != 1:
                    addr = AddrRange(addr[0], addr[-1])
        elif pr.action in ("snat", "dnat"):
            raise self.error(f"{pr.action} needs an address in its target", t)
        ports = None
        if ports_part is not None:
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", ports_part)
            if not m or not 1 <= int(m.group(1)) <= int(m.group(2) or m.group(1)) <= 65535:
                raise self.error(f"invalid port '{ports_part}' in target: 1-65535 or a range",
                                 t)
            ports = Range(int(m.group(1)), int(m.group(2) or m.group(1)))
        pr.target = NatTarget(addr, ports)

    def check_rule(self, pr: PRule, r: RuleStmt, chain: str, seen) -> None:
        if pr.reject_with == "tcp-reset":
            if not pr.services or any(a.proto != 6 for a in pr.services):
                raise self.error("reject with tcp-reset needs a rule that matches only tcp "
                                 "(add a service like tcp/25)", seen["with"])
        if pr.target is not None and pr.target.ports is not None:
            if not pr.services or any(a.proto not in (6, 17, 132, 33, 136)
                                      for a in pr.services):
                raise self.error("a port in the target needs a rule that matches only tcp, "
                                 "udp, sctp or dccp (add a service like tcp/8080)", r.target)
        if pr.services is not None and pr.saddr is None and pr.daddr is None:
            pass


def read_file(path: str) -> str:
    """The text of policy `path` ('-': standard input), as written: no newline translation
    (a lone \r is not a line end, fwc.policy.parser.physical_lines).  A byte that is not
    UTF-8 is a syntax error located at it, as in rulesets."""
    from fwc.frontends import decode_source, read_limited
    data = read_limited(path)  # OSError: its strerror says why (unreadable, endless stream)
    return decode_source(data, "<stdin>" if path == "-" else path)
