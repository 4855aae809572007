"""The simulator: the meaning of every IR construct, written once.

A packet crosses the netfilter hooks of its path in kernel order (in: prerouting -> input;
out: output -> postrouting; fwd: prerouting -> forward -> postrouting).  In each hook the base
chains of every table of a matching family run in priority order, with conntrack lookup at
-200 (prerouting/output), the NAT core at -100 (prerouting/output, destination NAT) and +100
(input/postrouting, source NAT), and helpers + confirmation at the end of input/postrouting.

Chains are compiled once into closures.  A base chain whose outcome depends only on packet
fields (no per-packet state such as `statistic nth`) caches its outcome per tuple of the fields
its rules read, so identical inputs are not re-evaluated; effects (marks, notrack, helper) are
replayed from the cache.  NAT chains are never cached (they run once per connection).
"""

from __future__ import annotations

import bisect
import ipaddress
import sys
import time
import types
from typing import Any, Callable, Optional

import attrs

from fwc import ir, timewindow
from fwc.backends.simulate_fib import fib_reader
from fwc.conntrack import fields as nftf
from fwc.conntrack.helpers import HELPERS, HelperNotModelled, run_helper
from fwc.conntrack.jhash import cluster_node, jhash_bytes
from fwc.conntrack.nat import MANIP_OF_HOOK, NoFreeTuple, manip_packet, setup_binding
from fwc.conntrack.skb import ICMP_PROTOS, PORT_PROTOS, Skb, addr_str, flag_bits
from fwc.conntrack.table import ConntrackTable
from fwc.errors import FwcError, FwcSyntaxError, Unsupported
from fwc.packet import Case, CaseResult, Packet

PATHS = {"in": ("prerouting", "input"), "out": ("output", "postrouting"),
         "fwd": ("prerouting", "forward", "postrouting")}
CT_PRIORITY = -200
NAT_PRIORITY = {"prerouting": -100, "output": -100, "input": 100, "postrouting": 100}
PROTO_NUM = {"tcp": 6, "udp": 17, "sctp": 132, "dccp": 33, "udplite": 136}


def _default_interfaces() -> dict:
    return {"eth0": ("192.0.2.1/24", "2001:db8:f::1/64"),
            "eth1": ("203.0.113.1/24", "2001:db8:b::1/64"),
            "lo": ("127.0.0.1/8", "::1/128")}


@attrs.define(frozen=True)
class SimOptions:
    """Host facts the ruleset cannot tell; every default is documented in the README."""

    tcp_loose: bool = True  # net.netfilter.nf_conntrack_tcp_loose
    # interface -> addresses with prefix length (first of a family = primary, used by
    # MASQUERADE / REDIRECT); every address here is a LOCAL address of the firewall
    interfaces: dict = attrs.field(factory=_default_interfaces)
    extra_local: tuple[str, ...] = ()  # further local addresses/prefixes (fib type LOCAL)
    limit_over: bool = False  # `limit`: False = every packet is under the rate
    statistic_random: bool = False  # `statistic mode random`: True = the draw succeeds
    random_draw: int = 0  # what `numgen random mod N` draws (taken mod N)
    # set name -> element strings: an external (ipset) set's contents, or elements added to a
    # named nft set the ruleset only reads (filled from outside, e.g. by fail2ban)
    sets: dict = attrs.field(factory=dict)
    uid: int = 0  # socket owner of locally generated (out) packets
    gid: int = 0
    src_mac: Optional[str] = None  # source MAC of incoming packets; None = unknown, no match
    ttl: int = 64  # ttl / hop limit of every packet
    cache: bool = True  # per-chain decision cache
    default_route: str = "eth0"  # where packets to non-connected networks leave
    # the kernel's 32-bit jiffies and HZ while the packets pass: an unconfirmed entry's
    # timeout is still relative, so `--ctexpire` / `ct expiration` read
    # max(0, s32(timeout * HZ - jiffies)) / HZ. None = a host up for longer than any timeout
    # (the reading is 0)
    jiffies: Optional[int] = None
    hz: int = 250
    # the wall clock, UTC nanoseconds since the epoch, for -m time / meta time / meta hour;
    # None = the real clock when each packet is sent
    clock_ns: Optional[int] = None
    # the kernel's time zone (sys_tz, minutes west of UTC) that `meta day` reads: 0 unless
    # something called settimeofday with one (systemd does only for an RTC in local time)
    kernel_tz_minutes_west: int = 0


# ----------------------------------------------------------------------------- compilation


class _Compiled:
    __slots__ = ("name", "rules", "reads", "cacheable", "index", "cand")

    def __init__(self, name: str):
        self.name = name
        self.rules: list = []
        self.reads: set = set()
        self.cacheable = True
        self.index = None  # per-rule (protos, dport ranges) prefilter, None when not worth it
        self.cand: dict = {}


class _Rule:
    __slots__ = ("matches", "stmts", "verdict", "num", "loc", "pre")

    def __init__(self, matches, stmts, verdict, num, loc, pre):
        self.matches, self.stmts, self.verdict = matches, stmts, verdict
        self.num, self.loc, self.pre = num, loc, pre


def _element_from_text(text, arity: int, name: str, rule: ir.Rule) -> tuple:
    """A set element given as text ("198.51.100.0/24", "10.0.0.1,80", "1000-2000", "tcp,53"):
    one nft value per field (a network, an int or Range, or a symbol such as tcp)."""
    parts = [x.strip() for x in str(text).split(",")]
    if len(parts) != arity:
        raise FwcSyntaxError(f"set {name}: element {text!r} does not have {arity} field(s)",
                             rule.loc)
    out = []
    for part in parts:
        try:
            out.append(ipaddress.ip_network(part, strict=False))
            continue
        except ValueError:
            pass
        lo, dash, hi = part.partition("-")
        if lo.isdigit() and (not dash or hi.isdigit()):
            out.append(ir.Range(int(lo), int(hi)) if dash else int(lo))
        else:
            out.append(part.lower())
    return tuple(out)


_STOP = object()  # what a statement returns when nft stops the rule there


def _set_writers(rs: ir.Ruleset) -> tuple[set, dict, dict]:
    """Which sets the rules change from the packet path: (ipset names SET updates,
    {(family, table): nft sets add/update/delete @set changes},
    {(family, table): nft sets keeping per-element limits (meters)})."""
    ipsets: set = set()
    updated: dict = {}
    limited: dict = {}
    for t in rs.tables:
        key = (t.family, t.name)
        for c in t.chains:
            for r in c.rules:
                for st in r.statements:
                    if isinstance(st, ir.IpsetUpdate):
                        ipsets.add(st.name)
                    elif isinstance(st, ir.SetUpdate):
                        updated.setdefault(key, set()).add(st.set)
                for m in r.matches:
                    if isinstance(m, (ir.SetLimit, ir.HashLimit)):
                        limited.setdefault(key, set()).add(
                            m.set if isinstance(m, ir.SetLimit) else m.name)
    return ipsets, updated, limited


def _numgen_match(m) -> bool:
    """A FieldMatch/SetMatch reading `numgen` (a counter or a draw each time it is read)."""
    keys = (m.expr,) if isinstance(m, ir.FieldMatch) else \
        m.keys if isinstance(m, ir.SetMatch) else ()
    return any(k.startswith("numgen ") for k in keys)


def _intervals(values, l3: int) -> list[tuple[int, int]]:
    out = []
    for v in values:
        if v.version != l3:
            continue
        if isinstance(v, ir.AddrRange):
            out.append((int(v.lo), int(v.hi)))
        else:
            out.append((int(v.network_address), int(v.broadcast_address)))
    return out


def _in_any(x: int, ivs) -> bool:
    for lo, hi in ivs:
        if lo <= x <= hi:
            return True
    return False


class Simulator:
    """Compiles a Ruleset once; `run_case` runs cases against a fresh conntrack table."""

    def __init__(self, ruleset: ir.Ruleset, options: Optional[SimOptions] = None):
        self.rs = ruleset
        self.opt = options or SimOptions()
        self.conntrack = ConntrackTable(self.opt.tcp_loose, self.opt.interfaces)
        self._per_case_state: list[dict] = []  # statistic nth counters, reset per case
        self._byte_buckets: dict = {}  # (table, name) -> the bucket of a named byte limit
        self._helper_locs: dict = {}  # helper name -> where a rule first assigns it
        self._recent_lists: dict[str, dict] = {}  # xt_recent lists by name, emptied per case
        self._connlimit_lists: dict = {}  # connlimit / ct count lists, emptied per case
        # ipset elements SET added (+) or deleted (-) during the case: name -> {elem: bool}
        self._ipset_changes: dict[str, dict] = {}
        # the same for nft sets `add|update|delete @set` changes: (family, table, set) -> ...
        self._set_changes: dict[tuple, dict] = {}
        self._ipsets_set, self._sets_updated, self._sets_limited = _set_writers(ruleset)
        self.own: dict = {}  # (l3, address) -> device (None: any) the current case owns
        self._own_key: frozenset = frozenset()
        self._setup_host()
        self._stages: dict[tuple[str, int], list] = {}
        self._cache: dict = {}
        self._keyfns: dict = {}
        self._compile()

    # ------------------------------------------------------------------ host facts

    def _setup_host(self) -> None:
        self.iface_addrs: dict[str, list] = {}
        local = []
        for name, addrs in self.opt.interfaces.items():
            parsed = [ipaddress.ip_interface(a) for a in addrs]
            self.iface_addrs[name] = parsed
            local += [(name, a.ip.version, int(a.ip), int(a.ip)) for a in parsed]
            for a in parsed:
                if name == "lo":
                    n = a.network
                    local.append((name, n.version, int(n.network_address),
                                  int(n.broadcast_address)))
        for text in self.opt.extra_local:
            n = ipaddress.ip_network(text, strict=False)
            local.append((None, n.version, int(n.network_address), int(n.broadcast_address)))
        self.local = local
        self.bcast = set()
        for addrs in self.iface_addrs.values():
            for a in addrs:
                if a.version == 4 and a.network.prefixlen < 31:
                    self.bcast.add(int(a.network.broadcast_address))
        self.bcast.add(0xFFFFFFFF)

    def primary_addr(self, iface: Optional[str], l3: int) -> Optional[int]:
        for a in self.iface_addrs.get(iface or "", ()):
            if a.version == l3:
                return int(a.ip)
        return None

    def redirect_addr(self, iface: Optional[str], l3: int, dst: int) -> Optional[int]:
        """Where REDIRECT sends a packet that came in on `iface`: IPv4, the interface's primary
        address; IPv6 (nf_nat_redirect_ipv6), the first address in the device's list whose
        scope is the destination's (the kernel lists the newest address of a scope first: the
        addresses the case owns there, then the configured ones in the order given, as `ip -6
        addr show` prints them).  None: no such address (the kernel drops the packet)."""
        if l3 == 4:
            return self.primary_addr(iface, l3)
        configured = [int(a.ip) for a in self.iface_addrs.get(iface or "", ()) if a.version == 6]
        owned = [a for (v, a), dev in reversed(list(self.own.items()))
                 if v == 6 and dev == iface and a not in configured]
        want = _v6_scope(dst)
        return next((a for a in owned + configured if _v6_scope(a) == want), None)

    def masquerade_addr(self, iface: Optional[str], l3: int, dst: Optional[int] = None,
                        local_src: Optional[int] = None) -> Optional[int]:
        """The outgoing interface's primary address; when it has none, the kernel
        (inet_select_addr / IPv6 source selection) takes a global address of another one.
        IPv6 with `dst`: source address selection among the interface's addresses (and
        `local_src`, the host's own source of a locally generated packet): the destination
        itself, then one of its scope (link-local or not), then the longest common prefix."""
        if l3 == 6 and dst is not None:
            cands = [int(a.ip) for a in self.iface_addrs.get(iface or "", ()) if a.version == 6]
            if local_src is not None and local_src not in cands:
                cands.append(local_src)
            if cands:
                ll = lambda a: (a >> 118) == 0x3FA  # fe80::/10
                return max(cands, key=lambda a: (a == dst, ll(a) == ll(dst),
                                                 128 - (a ^ dst).bit_length(),
                                                 -cands.index(a)))
        own = self.primary_addr(iface, l3)
        if own is not None:
            return own
        for name, addrs in self.iface_addrs.items():
            for a in addrs:
                if a.version == l3 and not (a.ip.is_loopback or a.ip.is_link_local):
                    return int(a.ip)
        return None

    def addr_type(self, l3: int, a: int, iface: Optional[str] = None,
                  restrict: bool = False) -> str:
        own = self.own.get((l3, a), False) if self.own else False
        if own is not False and (not restrict or own is None or own == iface):
            return "LOCAL"
        for name, v, lo, hi in self.local:
            if v == l3 and lo <= a <= hi and (not restrict or name == iface or name is None):
                return "LOCAL"
        ip = ipaddress.ip_address(a) if l3 == 6 else ipaddress.IPv4Address(a)
        if l3 == 4 and a in self.bcast:
            return "BROADCAST"
        if ip.is_multicast:
            return "MULTICAST"
        if ip.is_unspecified:
            return "UNSPEC"
        return "UNICAST"

    # ------------------------------------------------------------------ ruleset compilation

    def _compile(self) -> None:
        self._chains: dict[tuple[str, str, str], _Compiled] = {}
        bases = []
        order = 0
        nat_families = set()
        # a bridge, arp or netdev table with no rule and no dropping policy decides nothing
        tables = [t for t in self.rs.tables if t.family in ir.FAMILIES or any(
            c.rules or (c.base is not None and c.base.policy == "drop") for c in t.chains)]
        for table in tables:
            if table.family not in ir.FAMILIES:
                raise Unsupported(f"table family {table.family!r} (table {table.name}) is not "
                                  "simulated; only ip, ip6 and inet", table.loc)
            for chain in table.chains:
                if chain.base is not None and chain.base.devices:
                    raise Unsupported(f"base chain {chain.name} bound to devices "
                                      f"{', '.join(chain.base.devices)} is not simulated", chain.loc)
                self._chains[(table.family, table.name, chain.name)] = _Compiled(chain.name)
        for table in tables:
            for chain in table.chains:
                self._compile_chain(table, chain)
                if chain.base is not None:
                    b = chain.base
                    if b.hook not in ("prerouting", "input", "forward", "output", "postrouting"):
                        raise Unsupported(f"hook {b.hook!r} of chain {chain.name} is not simulated",
                                          chain.loc)
                    order += 1
                    bases.append((table, chain, order))
                    if b.type == "nat":
                        nat_families.update((4, 6) if table.family == "inet" else
                                            ((4,) if table.family == "ip" else (6,)))
        closures = self._closures()
        for key, comp in self._chains.items():
            if closures is not None:
                comp.reads, comp.cacheable = closures[key]
            else:
                reach = self._reachable(key)  # (jumps with a loop)
                comp.reads = set().union(*(c.reads for c in reach))
                comp.cacheable = all(c.cacheable for c in reach)
        for hook in ("prerouting", "input", "forward", "output", "postrouting"):
            for l3 in (4, 6):
                fam_ok = ("inet", "ip" if l3 == 4 else "ip6")
                stages = []
                if hook in ("prerouting", "output"):
                    stages.append((CT_PRIORITY, -1, ("ct",)))
                nat_chains = []
                for table, chain, o in bases:
                    b = chain.base
                    if b.hook != hook or table.family not in fam_ok:
                        continue
                    comp = self._chains[(table.family, table.name, chain.name)]
                    if b.type == "nat":
                        nat_chains.append((b.priority, o, table, chain, comp))
                    else:
                        stages.append((b.priority, o, ("chain", table, chain, comp)))
                # at equal priority the kernel runs the chain registered last first
                # (nf_hook_entries_grow inserts a hook before the first one of its priority)
                if l3 in nat_families and hook in NAT_PRIORITY:
                    nat_chains.sort(key=lambda x: (x[0], -x[1]))
                    stages.append((NAT_PRIORITY[hook], -1,
                                   ("nat", MANIP_OF_HOOK[hook], [c[2:] for c in nat_chains])))
                # (conntrack and NAT, order -1, stay first at their own priority)
                stages.sort(key=lambda s: (s[0], s[1] >= 0, -s[1]))
                self._stages[(hook, l3)] = [s[2] for s in stages]

    def _children(self, key) -> list:
        return [(key[0], key[1], t) for r in self._chains[key].rules for t in _targets(r.verdict)]

    def _closures(self) -> Optional[dict]:
        """Per chain: (what it and every chain it reaches read, whether all are cacheable),
        each chain's computed once (a walk per chain was quadratic on shared sub-graphs).
        None when the jumps have a loop (the slower walks below handle that).  Iterative: a
        line of a thousand user chains is a valid ruleset."""
        memo: dict = {}
        for root in self._chains:
            if root in memo:
                continue
            for event, key in ir.depth_first(root, lambda k: ((c, c) for c in self._children(k)),
                                             memo):
                if event == "back":
                    return None
                comp = self._chains[key]
                reads, ok = set(comp.reads), comp.cacheable
                for t in self._children(key):
                    reads |= memo[t][0]
                    ok = ok and memo[t][1]
                memo[key] = (reads, ok)
        return memo

    def _reachable(self, key) -> list:
        seen, todo = {key}, [key]
        while todo:
            for t in self._children(todo.pop()):
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return [self._chains[k] for k in seen]

    def _compile_chain(self, table: ir.Table, chain: ir.Chain) -> None:
        comp = self._chains[(table.family, table.name, chain.name)]
        is_nat = chain.base is not None and chain.base.type == "nat"
        for num, rule in enumerate(chain.rules, 1):
            matches: list = []
            try:
                self._compile_rule(comp, table, chain, is_nat, num, rule, matches)
            except Unsupported as err:
                v = rule.verdict
                if isinstance(v, (ir.Jump, ir.Goto)) and \
                        (table.family, table.name, v.chain) not in self._chains:
                    raise  # (a broken ruleset, not a construct the simulator lacks)
                # refused only for the packets that reach the construct: the matches compiled
                # before it are kept, then the rule raises (an `out` packet never reaches a
                # prerouting TPROXY rule, so it is simulated)
                def refuse(p, err=err):
                    raise err
                comp.cacheable = False
                comp.rules.append(_Rule(tuple(matches) + (refuse,), (), None, num, rule.loc,
                                        None))
        if len(comp.rules) >= 16:
            comp.index = True

    def _compile_rule(self, comp, table, chain, is_nat, num, rule, matches: list) -> None:
        """Compile `rule` into comp.rules; `matches` gets each match as it is compiled."""
        pre_protos, pre_ports = None, None
        for m in rule.matches:
            fn, reads, cacheable = self._compile_match(m, rule, table)
            matches.append(fn)
            comp.reads |= reads
            comp.cacheable &= cacheable
            if isinstance(m, ir.Proto) and not m.negate:
                pre_protos = m.protos if pre_protos is None else pre_protos & m.protos
            elif isinstance(m, ir.Port) and m.field == "dport" and not m.negate \
                    and m.proto in PROTO_NUM:
                p = frozenset((PROTO_NUM[m.proto],))
                pre_protos = p if pre_protos is None else pre_protos & p
                pre_ports = tuple((r.lo, r.hi) for r in m.ranges)
        stmts = []
        for s in rule.statements:
            fn, reads = self._compile_statement(s, rule, table, chain)
            stmts.append(fn)
            comp.reads |= reads
        if _first_template_wins(rule, stmts):
            comp.reads.add("tmpl")
        verdict = self._compile_verdict(rule.verdict, rule, table, chain, is_nat)
        nat_fam = ir.nat_family(rule.verdict) if table.family == "inet" else None
        nat_l3 = None if nat_fam is None else (4 if nat_fam == "ip" else 6)
        if nat_l3 is not None:
            # `dnat ip to ...` in an inet table does nothing to an IPv6 packet, which goes
            # on to the next rule (nft_nat_inet_eval): the rule holds for its family only
            matches.append(lambda p, l3=nat_l3: p.l3 == l3)
            comp.reads.add("l3")
        if isinstance(rule.verdict, (ir.VerdictMap, ir.NatMap)):
            # the map's key fields decide the verdict but are not among the reads the
            # decision cache keys on: never cache such a chain
            comp.cacheable = False
        pre = None if (pre_protos is None and pre_ports is None) else (pre_protos, pre_ports)
        if any(isinstance(m, ir.STATEFUL_MATCHES) or _numgen_match(m) for m in rule.matches):
            pre = None  # stateful matches must see every packet that reaches them
        comp.rules.append(_Rule(tuple(matches), tuple(stmts), verdict, num, rule.loc, pre))

    # ------------------------------------------------------------------ matches

    def _compile_match(self, m, rule: ir.Rule, table: ir.Table):
        """-> (predicate(skb) -> bool, fields read, cacheable)."""
        neg = getattr(m, "negate", False)
        T = type(m)
        if T is ir.Proto:
            protos = frozenset(m.protos)
            return (lambda p: (p.proto in protos) != neg), {"proto"}, True
        if T is ir.Address:
            attr = "src" if m.field == "saddr" else "dst"
            fams = {v.version for v in m.values}
            iv = {l3: _intervals(m.values, l3) for l3 in (4, 6)}

            def addr(p, attr=attr, iv=iv, fams=fams):
                if p.l3 not in fams:
                    return False
                return _in_any(getattr(p, attr), iv[p.l3]) != neg
            return addr, {"l3", attr}, True
        if T is ir.Interface:
            attr = "iif" if m.field == "iifname" else "oif"
            name = m.name
            if name.endswith("+") or name.endswith("*"):
                prefix = name[:-1]

                def iface(p, attr=attr):
                    v = getattr(p, attr)
                    return (v is not None and v.startswith(prefix)) != neg
            else:
                def iface(p, attr=attr):
                    return (getattr(p, attr) == name) != neg
            return iface, {attr}, True
        if T is ir.Fragment:
            return (lambda p: neg), set(), True  # simulated packets are never fragments
        if T is ir.Port:
            pn = PROTO_NUM.get(m.proto)
            if pn is None:
                raise Unsupported(f"port match on protocol {m.proto!r}", rule.loc)
            rs = tuple((r.lo, r.hi) for r in m.ranges)
            if m.field == "port":
                def port(p):
                    if p.proto != pn:
                        return False
                    return (_in_any(p.sport, rs) or _in_any(p.dport, rs)) != neg
                return port, {"proto", "sport", "dport"}, True
            attr = "sport" if m.field == "sport" else "dport"

            def port1(p, attr=attr):
                if p.proto != pn:
                    return False
                return _in_any(getattr(p, attr), rs) != neg
            return port1, {"proto", attr}, True
        if T is ir.TcpFlags:
            mask, comp = flag_bits(m.mask), flag_bits(m.comp)
            return (lambda p: p.proto == 6 and ((p.flags & mask) == comp) != neg), \
                {"proto", "flags"}, True
        if T is ir.TcpOption:
            # simulated segments carry no TCP options (as the kernel harness sends them, and as
            # MssOutside reads them): only the negation matches, on TCP
            return (lambda p: p.proto == 6 and neg), {"proto"}, True
        if T is ir.Icmp:
            pn = 1 if m.family == "ip" else 58
            typ, lo, hi = m.type, m.codes.lo, m.codes.hi

            def icmp(p):
                if p.proto != pn:
                    return False
                ok = typ is None or (p.icmp_type == typ and lo <= p.icmp_code <= hi)
                return ok != neg
            return icmp, {"proto", "icmp"}, True
        if T is ir.CtState:
            states = frozenset(m.states)
            real = states - set(ir.CT_VIRTUAL_STATES)
            virt = states & set(ir.CT_VIRTUAL_STATES)

            def ctstate(p):
                # before conntrack ran: a notrack earlier in raw already reads UNTRACKED
                ok = (p.ct_state or ("UNTRACKED" if p.notrack else "INVALID")) in real
                if not ok and virt and p.ct is not None:
                    ok = bool(virt & p.ct.status)
                return ok != neg
            return ctstate, {"ct_state", "ct_status"}, True
        if T is ir.CtStatus:
            bits = frozenset(m.bits)
            # no conntrack entry: xt_conntrack and nft `ct status` never match, negated or not
            return (lambda p: p.ct is not None and bool(bits & p.ct.status) != neg), \
                {"ct_status"}, True
        if T is ir.CtDirection:
            want = 0 if m.direction == "ORIGINAL" else 1
            return (lambda p: p.ct is not None and (p.ct_dir == want) != neg), \
                {"ct_state", "ct_dir"}, True
        if T is ir.CtProto:
            pr = m.proto
            return (lambda p: p.ct is not None and (p.ct.proto == pr) != neg), {"ct_tuples"}, True
        if T is ir.CtAddress:
            w = 0 if m.which == "original" else 1
            i = 2 if m.field == "saddr" else 3
            fams = {v.version for v in m.values}
            iv = {l3: _intervals(m.values, l3) for l3 in (4, 6)}

            def ctaddr(p):
                if p.ct is None or p.l3 not in fams:
                    return False
                return _in_any(p.ct.tuples[w][i], iv[p.l3]) != neg
            return ctaddr, {"ct_tuples"}, True
        if T is ir.CtPort:
            w = 0 if m.which == "original" else 1
            i = 4 if m.field == "sport" else 5
            rs = tuple((r.lo, r.hi) for r in m.ranges)

            def ctport(p):
                if p.ct is None or p.ct.proto not in PORT_PROTOS:
                    return False
                return _in_any(p.ct.tuples[w][i], rs) != neg
            return ctport, {"ct_tuples"}, True
        if T is ir.CtExpire:  # (in ms: a case takes no time, a confirmed entry reads it whole)
            lo, hi = m.range.lo, m.range.hi
            unconfirmed = self._unconfirmed_expiry
            return (lambda p: p.ct is not None and (lo <= (
                p.ct.timeout() * 1000 if p.ct.confirmed else unconfirmed(p.ct.timeout())) <= hi)
                != neg), {"ct_timeout"}, True
        if T is ir.Mark:
            val, mask = m.value, m.mask
            if m.kind == "meta":
                return (lambda p: ((p.mark & mask) == val) != neg), {"mark"}, True
            # no conntrack entry: connmark and nft `ct mark` never match, negated or not
            return (lambda p: p.ct is not None and ((p.ct.mark & mask) == val) != neg), \
                {"ct_mark"}, True
        if T is ir.Mac:
            mac = self.opt.src_mac
            ok = mac is not None and mac.lower() == m.addr.lower()
            return (lambda p: (p.dir != "out" and ok) != neg), {"dir"}, True
        if T is ir.AddrType:
            attr = "src" if m.field == "saddr" else "dst"
            types = frozenset(t.upper() for t in m.types)
            lim = m.limit_iface
            restrict = lim is not None
            ifattr = "iif" if lim == "in" else "oif"

            def addrtype(p):
                t = self.addr_type(p.l3, getattr(p, attr), getattr(p, ifattr), restrict)
                return (t in types) != neg
            return addrtype, {"l3", attr, "iif", "oif", "own"}, True
        if T in (ir.SkUid, ir.SkGid):
            lo, hi = m.range.lo, m.range.hi
            v = self.opt.uid if T is ir.SkUid else self.opt.gid
            return (lambda p: (p.dir == "out" and lo <= v <= hi) != neg), {"dir"}, True
        if T is ir.ConnLabel:
            bit = m.bit
            return (lambda p: (p.ct is not None and bool(p.ct.labels >> bit & 1)) != neg), \
                {"ct_labels", "ct_state"}, True
        if T is ir.ConnLabelSet:
            bit = m.bit

            def label_set(p):
                if p.ct is None:
                    return neg
                p.ct.labels |= 1 << bit
                return not neg
            return label_set, {"ct_labels", "ct_state"}, False
        if T is ir.MssOutside:
            # simulated packets carry no TCP options: a TCP packet has no MSS, so it matches
            return (lambda p: p.proto == 6), {"proto"}, True
        if T is ir.Socket:
            raise Unsupported("-m socket (the simulator has no local sockets to look up)",
                              rule.loc)
        if T is ir.SocketExists:
            return (lambda p: (p.dir == "out") != neg), {"dir"}, True
        if T is ir.PktType:
            want = m.type

            def pkttype(p):
                return (self.pkt_type(p) == want) != neg
            return pkttype, {"l3", "dst", "dir", "iif"}, True
        if T is ir.Length:
            lo, hi = m.range.lo, m.range.hi
            return (lambda p: (lo <= p.length <= hi) != neg), {"length"}, True
        if T is ir.Ttl:
            l3 = 4 if m.family == "ip" else 6
            op, val = m.op, m.value
            cmp = {"eq": lambda a: a == val, "ne": lambda a: a != val,
                   "lt": lambda a: a < val, "gt": lambda a: a > val}.get(op)
            if cmp is None:
                raise Unsupported(f"ttl comparison {op!r}", rule.loc)
            return (lambda p: p.l3 == l3 and cmp(p.ttl)), {"l3", "ttl"}, True
        if T is ir.Dscp:
            val = m.value
            return (lambda p: ((p.tos >> 2) == val) != neg), {"tos"}, True
        if T is ir.Tos:
            val, mask = m.value, m.mask
            return (lambda p: ((p.tos & mask) == val) != neg), {"tos"}, True
        if T is ir.Limit:
            under = not self.opt.limit_over
            if m.bytes:
                return self._byte_limit(m, None, under), set(), False
            return (lambda p: under != neg), set(), True
        if T is ir.NamedLimit:  # (one bucket for the rules naming it: as a limit, within it
            under = not self.opt.limit_over  # unless limit_over says otherwise)
            over = m.limit.negate
            if m.limit.bytes:
                return self._byte_limit(m.limit, (id(table), m.name), under), set(), False
            return (lambda p: under != over), set(), True
        if T is ir.HashLimit:
            # per-key buckets: like `limit`, every key is taken to be within its rate unless
            # limit_over says otherwise; `above` matches only over the rate
            under = not self.opt.limit_over
            return (lambda p: under != m.above), set(), True
        if T is ir.SetLimit:
            # evaluated as HashLimit is: each element within its rate unless limit_over says
            # otherwise (the set is taken not to be full)
            under = not self.opt.limit_over
            return (lambda p: under != m.above), set(), True
        if T is ir.SetLookup:
            return self._compile_setlookup(m, rule)
        if T is ir.IpsecPolicy:
            return (lambda p: not m.ipsec), set(), True  # no IPsec in the simulated host
        if T is ir.PhysDevBridged:
            return (lambda p: neg), set(), True  # the simulated firewall routes, never bridges
        if T is ir.Helper:
            name = m.name

            def helper(p):
                ct = p.ct
                # (xt_helper: an empty name matches every helper)
                ok = ct is not None and ct.master is not None and bool(ct.master.helper) and \
                    (ct.master.helper == name or not name)
                return ok != neg
            return helper, {"ct_helper"}, True
        if T is ir.Cluster:
            total, mask, seed = m.total, m.mask, m.seed

            def cluster(p):
                # (its pkt_type rewrite never applies here: a simulated packet's link-layer
                # type follows its IP destination, so a unicast one is never multicast)
                ct = p.ct
                if ct is None:
                    return False
                owner = ct.master if ct.master is not None else ct
                l3, _, src = owner.tuples[0][:3]
                node = cluster_node(l3, src, seed, total)
                whose = "its master's" if owner is not ct else "its"
                p.notes.append(f"cluster: the connection is node {node + 1} of {total} "
                               f"({whose} original source {addr_str(l3, src)} hashed)")
                return bool(mask >> node & 1) != neg
            return cluster, {"ct_state", "ct_tuples", "ct_master"}, True
        if T is ir.Statistic:
            if m.mode == "random":
                ok = self.opt.statistic_random or m.probability >= 1.0
                return (lambda p: ok != neg), set(), True
            if m.mode == "nth":
                state = {"count": m.packet, "init": m.packet}
                self._per_case_state.append(state)
                every = m.every

                def nth(p):
                    if state["count"] >= every - 1:
                        state["count"] = 0
                        return not neg
                    state["count"] += 1
                    return neg
                return nth, set(), False
            raise Unsupported(f"statistic mode {m.mode!r}", rule.loc)
        if T is ir.Recent:
            return self._compile_recent(m, rule), set(), False
        if T is ir.FieldMatch:
            return self._compile_fieldmatch(m, rule)
        if T is ir.SetMatch:
            return self._compile_setmatch(m, rule, table)
        if T is ir.Time:
            return (lambda p: timewindow.matches(m, p.now_ns // 10**9)), {"clock"}, True
        if T is ir.ConnLimit or T is ir.CtCount:
            return self._compile_connlimit(m), set(), False
        if T is ir.Quota:
            # the rule's byte counter, from 0 at the start of each case (the kernel's lives as
            # long as the rule): the packet's length is added, then compared
            state = {"count": 0, "init": 0}
            self._per_case_state.append(state)
            limit, over = m.bytes, m.over

            def quota(p):
                state["count"] += p.length
                return (state["count"] > limit) == over
            return quota, set(), False
        raise Unsupported(f"{ir.construct_name(m)} is not simulated", rule.loc)

    def _byte_limit(self, m: ir.Limit, shared, under: bool):
        """nft_limit counting bytes: a bucket of unit x (rate + burst) / rate ns, full at the
        start of each case; a packet costs unit x length / rate ns and is within the rate when
        the bucket holds that much, which it then spends.  The packets of a case come at one
        instant, so nothing refills between them.  `shared`: the key of a named limit's one
        bucket; under=False (limit_over) puts every packet over the rate."""
        ns = ir.UNIT_SECONDS[m.unit] * 10**9
        cap = ns * (m.rate + m.burst) // m.rate
        state = self._byte_buckets.get(shared) if shared is not None else None
        if state is None:
            state = {"count": cap, "init": cap}
            self._per_case_state.append(state)
            if shared is not None:
                self._byte_buckets[shared] = state
        rate, over = m.rate, m.negate

        def limit(p):
            cost = ns * p.length // rate
            within = under and cost <= state["count"]
            if within:
                state["count"] -= cost
            return within != over
        return limit

    _PKTTYPE_CODES = {"unicast": 0, "broadcast": 1, "multicast": 2}  # PACKET_HOST ...

    def _pkttype_reader(self, expr: str):
        """nft `meta pkttype` as -m pkttype reads it (skb->pkt_type; see pkt_type)."""
        if " ".join(expr.split()) not in ("meta pkttype", "pkttype"):
            return None
        return lambda p: self._PKTTYPE_CODES[self.pkt_type(p)]

    def pkt_type(self, p) -> str:
        """unicast (host), broadcast or multicast: from the packet's IP destination for a
        packet that came in (the frame it came in); a packet the host sends keeps
        PACKET_HOST in output and postrouting whatever its destination."""
        if p.dir == "out" and p.iif is None:
            return "unicast"
        t = self.addr_type(p.l3, p.dst)
        return {"BROADCAST": "broadcast", "MULTICAST": "multicast"}.get(t, "unicast")

    def _compile_fieldset(self, s, rule: ir.Rule):
        """nft `EXPR set VALUE` for the keys the simulator keeps: ct label (sets that label, on
        an entry: nf_connlabels_replace), meta mark and ct mark (a value, a mark, or and/or/xor/
        shifts of those, computed in 32 bits)."""
        if s.expr == "ct label" and isinstance(s.value, int) and not isinstance(s.value, bool):
            bit = s.value

            def label(p, emit):
                if p.ct is not None:
                    p.ct.labels |= 1 << bit
                    emit(f"ct label set {bit}")
                else:
                    emit("ct label set: no conntrack entry, no effect")
            return label, {"ct_labels", "ct_state"}
        if s.expr == "meta pkttype" and isinstance(s.value, str):
            want = "unicast" if s.value == "host" else s.value
            loc = rule.loc

            def pkttype_set(p, emit):
                # a simulated packet's pkt_type follows its IP destination: setting that same
                # type changes nothing; another one is a packet this model cannot carry
                if self.pkt_type(p) != want:
                    raise Unsupported(f"'meta pkttype set {s.value}' on a {self.pkt_type(p)} "
                                      "packet is not simulated", loc)
                emit(f"meta pkttype set {s.value}: already {s.value}")
            return pkttype_set, {"l3", "dst"}
        if s.expr not in ("meta mark", "ct mark"):
            raise Unsupported(f"statement '{s.expr} set' is not simulated", rule.loc)
        ops = {"&": int.__and__, "|": int.__or__, "^": int.__xor__,
               "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b}

        def check(v):
            # (reading ct mark is left out: without an entry nft would stop the whole rule)
            if isinstance(v, ir.BitOp) and v.op in ops:
                check(v.left), check(v.right)
            elif not (isinstance(v, int) or v == ir.FieldRef("meta mark")):
                raise Unsupported(f"'{s.expr} set' from {v!r} is not simulated", rule.loc)
        check(s.value)

        def value(v, p):  # (v passed check)
            if isinstance(v, ir.BitOp):
                return ops[v.op](value(v.left, p), value(v.right, p)) & 0xFFFFFFFF
            return p.mark if isinstance(v, ir.FieldRef) else v
        kind = s.expr

        def setfield(p, emit):
            v = value(s.value, p)
            if kind == "meta mark":
                p.mark = v & 0xFFFFFFFF
                emit(f"meta mark set {p.mark:#x}")
            elif p.ct is not None:
                p.ct.mark = v & 0xFFFFFFFF
                emit(f"ct mark set {p.ct.mark:#x}")
        return setfield, {"mark", "ct_mark", "ct_state"}

    def _unconfirmed_expiry(self, timeout: int) -> int:
        """What xt_conntrack and nft read as the remaining lifetime of an entry not yet
        confirmed: nf_ct_expires() subtracts the current jiffies from a timeout that is still
        relative (it becomes absolute at confirmation), so the reading depends on the uptime."""
        jiffies = self.opt.jiffies
        if jiffies is None:
            return 0
        left = (timeout * self.opt.hz - jiffies) & 0xFFFFFFFF
        return 0 if left >= 1 << 31 else left * 1000 // self.opt.hz  # (ms, jiffies_to_msecs)

    RECENT_LIST_MAX = 200  # xt_recent's ip_list_tot: a full list forgets its oldest address

    def _compile_connlimit(self, m):
        """xt_connlimit / nft `ct count` (nf_conncount): the rule keeps, per key (the masked
        source or destination address; one list for a bare `ct count`), a list of the
        connections that reached it.  Evaluating it walks the list in order: an entry whose
        connection is not in the table (never confirmed, or gone) is dropped, as is one of a
        closed TCP connection (TIME_WAIT, CLOSE), until the packet's own connection is found;
        else that is appended.  The count is the list's length (kernel 6.18 counts a
        connection once however close together its packets come: measured)."""
        lists = self._connlimit_lists
        uid = object()  # this rule's own tree
        if isinstance(m, ir.ConnLimit):
            attr, prefix, limit, over = ("src" if m.field == "saddr" else "dst"), m.prefix, \
                m.count, m.above
        else:
            attr, prefix, limit, over = None, 0, m.count, m.over
        def connlimit(p):
            if attr is None:
                key = None
            else:
                width = 32 if p.l3 == 4 else 128
                bits = min(prefix, width)
                key = (p.l3, getattr(p, attr) & (((1 << bits) - 1) << (width - bits)))
            lst = lists.setdefault((uid, key), [])
            ct = p.ct
            mine = (ct.zone, ct.tuples[0]) if ct is not None else (p.tmpl_zone, p.tuple())
            table = self.conntrack.entries  # (replaced by each case's reset: read it here)
            kept, found = [], False
            for i, stored in enumerate(lst):
                hit = table.get(stored)
                if hit is None or hit[1] != 0:  # not (or no longer) a confirmed connection
                    continue
                if stored == mine:
                    kept.extend(lst[i:])  # found: the rest of the list is not looked at
                    found = True
                    break
                e = hit[0]
                if e.proto == 6 and e.tcp_state in ("TIME_WAIT", "CLOSE"):
                    continue
                kept.append(stored)
            if not found:
                kept.append(mine)
            lst[:] = kept
            return (len(kept) > limit) == over
        return connlimit

    def _compile_recent(self, m: ir.Recent, rule: ir.Rule):
        """xt_recent's recent_mt.  A case takes no time, so every stamp is within --seconds
        and --reap removes nothing; the list keeps at least --hitcount stamps per address."""
        if m.rttl:
            raise Unsupported("recent --rttl (the TTL before forwarding) is not simulated", rule.loc)
        lists = self._recent_lists
        attr = "src" if m.side == "saddr" else "dst"

        def recent(p):
            full = (1 << (32 if p.l3 == 4 else 128)) - 1
            key = (p.l3, getattr(p, attr) & (full if m.mask is None else m.mask))
            entries = lists.setdefault(m.name, {})  # insertion order = least recently updated first
            hits = entries.get(key)
            ret = m.negate
            if hits is None:
                if m.command != "set":
                    return ret
                if len(entries) >= self.RECENT_LIST_MAX:
                    del entries[next(iter(entries))]
                entries[key] = 1
                return not ret
            if m.command == "set":
                ret = not ret
            elif m.command == "remove":
                del entries[key]
                return not ret
            elif not m.hitcount or hits >= m.hitcount:
                ret = not ret
            if m.command == "set" or (m.command == "update" and ret):
                del entries[key]
                entries[key] = hits + 1
            return ret
        return recent

    def _compile_setlookup(self, m: ir.SetLookup, rule: ir.Rule):
        raw = self.opt.sets.get(m.name)
        elements = []
        for text in raw or ():
            parts = [x.strip() for x in str(text).split(",")]
            if len(parts) != len(m.fields):
                raise FwcSyntaxError(f"set {m.name}: element {text!r} does not have "
                                     f"{len(m.fields)} field(s)", rule.loc)
            elem = []
            for f, part in zip(m.fields, parts):
                is_addr = f in ("saddr", "daddr", "addr", "src", "dst")
                try:
                    if is_addr:
                        n = ipaddress.ip_network(part, strict=False)
                        elem.append((n.version, int(n.network_address),
                                     int(n.broadcast_address)))
                    else:
                        lo, _, hi = part.partition("-")
                        lo_n, hi_n = int(lo), int(hi or lo)
                        if not 0 <= lo_n <= hi_n <= 65535:
                            raise ValueError(part)
                        elem.append((None, lo_n, hi_n))
                except ValueError:
                    what = "an address" if is_addr else "a port or range"
                    raise FwcSyntaxError(f"set {m.name}: element {text!r}: {part!r} is not "
                                         f"{what}", rule.loc) from None
            elements.append(tuple(elem))
        attrs_ = []
        for f in m.fields:
            attrs_.append({"saddr": "src", "src": "src", "daddr": "dst", "dst": "dst",
                           "addr": "src", "sport": "sport", "dport": "dport"}.get(f))
            if attrs_[-1] is None:
                raise Unsupported(f"set {m.name}: field {f!r}", rule.loc)
        neg = m.negate
        note = None if raw is not None else \
            f"set {m.name}: contents unknown, assumed empty (give them with SimOptions.sets)"
        changes = self._ipset_changes.setdefault(m.name, {})
        updated = m.name in self._ipsets_set

        def setlookup(p):
            if note:
                p.notes.append(note)
            key = (p.l3,) + tuple(getattr(p, a) for a in attrs_)
            if key in changes:  # SET added (True) or deleted (False) this very element
                return changes[key] != neg
            for elem in elements:
                for (v, lo, hi), a in zip(elem, attrs_):
                    x = getattr(p, a)
                    if x is None or (v is not None and v != p.l3) or not lo <= x <= hi:
                        break
                else:
                    return not neg
            return neg
        # (a set SET changes is read afresh for each packet: no decision cache)
        return setlookup, {"l3", "src", "dst", "sport", "dport"}, note is None and not updated

    def _field_reader(self, expr: str, rule: ir.Rule):
        if expr == "meta day":  # nft_meta_weekday: 0 Sunday, in the kernel's sys_tz
            west = 60 * self.opt.kernel_tz_minutes_west
            return lambda p: (4 + (p.now_ns // 10**9 - west) // 86400) % 7
        rd = nftf.reader(expr) or fib_reader(expr, self) or self._numgen_reader(expr, rule) or \
            self._jhash_reader(expr, rule) or self._pkttype_reader(expr)
        if rd is None:
            raise Unsupported(f"nft expression {expr!r} is not simulated", rule.loc)
        return rd

    # jhash keys: (bytes in the register, byte order); meta/ct marks are host-order words
    _HASH_KEYS = {**{f"{f} {d}": (2, "big") for f in ("tcp", "udp", "sctp", "dccp", "udplite",
                                                        "th") for d in ("sport", "dport")},
                  "ip saddr": (4, "big"), "ip daddr": (4, "big"),
                  "ip6 saddr": (16, "big"), "ip6 daddr": (16, "big"),
                  "ip protocol": (1, "big"), "meta l4proto": (1, "big"),
                  "meta mark": (4, sys.byteorder), "ct mark": (4, sys.byteorder)}

    def _jhash_reader(self, expr: str, rule: ir.Rule):
        """`jhash KEY [. KEY]... mod N seed S [offset O]`: nft_jhash hashes the key's bytes as
        they sit in the registers (in a concatenation each key padded with zeros to 32 bits),
        scaled to 0..N-1, plus O.  A key the packet lacks stops the rule, as its payload load
        would."""
        head, sep, tail = " ".join(expr.split()).partition(" mod ")
        words = tail.split()
        if not head.startswith("jhash ") or not sep or len(words) not in (1, 3, 5):
            return None
        opts = dict(zip(words[1::2], words[2::2]))
        keys = [k.strip() for k in head[len("jhash "):].split(" . ")]
        if any(k not in self._HASH_KEYS for k in keys) or set(opts) - {"seed", "offset"}:
            return None
        try:
            mod, seed, off = (int(x, 0) for x in (words[0], opts.get("seed", "0"),
                                                  opts.get("offset", "0")))
        except ValueError:
            return None
        if mod <= 0:
            raise Unsupported(f"{expr!r}: jhash needs a positive modulus", rule.loc)
        if "seed" not in opts:
            raise Unsupported(f"{expr!r} without a seed: the kernel picks a random one, not "
                              "simulated", rule.loc)
        parts = [(nftf.reader(k), *self._HASH_KEYS[k]) for k in keys]
        pad = len(parts) > 1  # (a single key is hashed at its own length)

        def jhash(p):
            data = b""
            for rd, width, order in parts:
                v = rd(p)
                if v is nftf.ABSENT:
                    return v
                data += v.to_bytes(width, order) + bytes(-width % 4 if pad else 0)
            return ((jhash_bytes(data, seed) * mod) >> 32) + off
        return jhash

    def _numgen_reader(self, expr: str, rule: ir.Rule):
        """`numgen inc|random mod N [offset O]`: inc counts 0, 1, ... N-1, 0 ... per rule (per
        case here, like statistic nth); random draws SimOptions.random_draw (mod N)."""
        words = expr.split()
        if len(words) not in (4, 6) or words[0] != "numgen" or words[2] != "mod" or \
                words[1] not in ("inc", "random") or (len(words) == 6 and words[4] != "offset"):
            return None
        try:
            mod = int(words[3], 0)
            off = int(words[5], 0) if len(words) == 6 else 0
        except ValueError:
            return None
        if mod <= 0:
            raise Unsupported(f"{expr!r}: numgen needs a positive modulus", rule.loc)
        if words[1] == "random":
            draw = self.opt.random_draw % mod + off
            note = f"{expr}: drew {draw} (SimOptions.random_draw / --random-draw)"

            def random(p):
                p.notes.append(note)
                return draw
            return random
        state = {"count": mod - 1, "init": mod - 1}  # the kernel starts at N-1: first value 0
        self._per_case_state.append(state)

        def inc(p):
            state["count"] = state["count"] + 1 if state["count"] + 1 < mod else 0
            return state["count"] + off
        return inc

    def _compile_fieldmatch(self, m, rule: ir.Rule):
        rd = self._field_reader(m.expr, rule)
        expr = " ".join(m.expr.split())
        ivs = []
        for v in m.values:
            iv = nftf.to_interval(expr, v)
            if iv is None:
                raise Unsupported(f"value {v!r} of {expr!r}", rule.loc)
            ivs.append(iv)
        op, mask, xor, neg = m.op, m.mask, m.xor, m.negate
        anybits = 0
        if op == "any":
            for iv in ivs:
                anybits |= iv[0] if isinstance(iv[0], int) else 0

        def fieldmatch(p):
            v = rd(p)
            if v is nftf.ABSENT:
                return False
            if isinstance(v, int):
                if xor is not None:
                    v ^= xor
                if mask is not None:
                    v &= mask
            if op == "eq":
                ok = any(nftf.value_in(expr, v, iv) for iv in ivs)
            elif op == "any":
                ok = bool(v & anybits)
            else:
                ref = ivs[0][0]
                ok = {"lt": v < ref, "gt": v > ref, "le": v <= ref, "ge": v >= ref}[op]
            return ok != neg
        # (a route lookup's type also depends on the case's own addresses)
        reads = {"fields", "own"} if m.expr.startswith("fib ") else {"fields"}
        return fieldmatch, reads, not m.expr.startswith("numgen ")

    def _set_elements(self, m, rule: ir.Rule, table: ir.Table):
        if m.name is None:
            return m.elements
        for s in table.sets:
            if s.name == m.name and isinstance(s, ir.NamedSet):
                if s.name in self._sets_limited.get((table.family, table.name), ()):
                    raise Unsupported(f"set @{m.name} keeps per-element limits; such dynamic "
                                      "sets are not simulated", rule.loc)
                # (a timeout or dynamic flag alone: elements come from outside, e.g. fail2ban;
                # the simulated set holds what the ruleset declares, plus SimOptions.sets)
                declared = tuple(e if isinstance(e, tuple) else (e,) for e in s.elements)
                if s.data is None and s.name in self.opt.sets:
                    for t in self.opt.sets[s.name]:
                        elem = _element_from_text(t, len(m.keys), s.name, rule)
                        for key, v in zip(m.keys, elem):
                            if nftf.to_interval(" ".join(key.split()), v) is None or \
                                    not _fits(" ".join(key.split()), v):
                                raise FwcSyntaxError(f"set {s.name}: element {t!r}: {v!s} is "
                                                     f"not a value of {key!r}", rule.loc)
                        declared += (elem,)
                return declared
        raise Unsupported(f"set @{m.name} is not defined in table {table.name}", rule.loc)

    def _set_size(self, s: ir.SetUpdate, rule: ir.Rule, table: ir.Table):
        """(size, lookup of the declared elements, {"count": elements now}) of the set an
        add/update/delete statement changes; size None when the set declares none."""
        decl = next((x for x in table.sets if x.name == s.set and isinstance(x, ir.NamedSet)),
                    None)
        if decl is None or decl.size is None:
            return None, None, None
        elements = self._set_elements(types.SimpleNamespace(name=s.set, keys=s.keys), rule, table)
        if elements and "interval" in decl.flags:
            raise Unsupported(f"set @{s.set} has a size and interval elements (how many slots "
                              "the kernel counts for an interval is not modelled)", rule.loc)
        state = {"count": len(elements), "init": len(elements)}
        self._per_case_state.append(state)  # (elements the rules add are per case too)
        return decl.size, self._compile_keyed(s.keys, elements, rule), state

    def _compile_keyed(self, keys, elements, rule, masks=()):
        readers = [(" ".join(k.split()), self._field_reader(k, rule)) for k in keys]
        if masks:  # VerdictMap.key_masks: the key's value ANDed with the mask is looked up
            readers = [(e, rd if mk is None else self._masked_reader(e, rd, mk, rule))
                       for (e, rd), mk in zip(readers, masks)]
        compiled = []
        for elem in elements:
            if len(elem) != len(readers):
                raise Unsupported("set element arity differs from its key", rule.loc)
            ivs = []
            for (expr, _), v in zip(readers, elem):
                iv = nftf.to_interval(expr, v)
                if iv is None:
                    raise Unsupported(f"set value {v!r} of {expr!r}", rule.loc)
                ivs.append(iv)
            compiled.append(tuple(ivs))

        index = _first_key_index(compiled)

        def lookup(p) -> Optional[int]:
            """Index of the first element the packet's key tuple is in; -1 none; None absent."""
            vals = []
            for _, rd in readers:
                v = rd(p)
                if v is nftf.ABSENT:
                    return None
                vals.append(v)
            if index is not None:  # only the elements whose first key holds the value
                los, groups = index
                v0 = vals[0]
                if not isinstance(v0, int):
                    return -1  # (a name never lies in a number interval: value_in)
                k = bisect.bisect_right(los, v0) - 1
                cands = groups[k][1] if k >= 0 and groups[k][0][1] >= v0 else ()
            else:
                cands = range(len(compiled))
            for i in cands:
                if all(nftf.value_in(e, v, iv) for (e, _), v, iv in
                       zip(readers, vals, compiled[i])):
                    return i
            return -1
        return lookup

    @staticmethod
    def _masked_reader(expr, rd, mask, rule):
        def masked(p):
            v = rd(p)
            if v is nftf.ABSENT:
                return v
            if not isinstance(v, int):
                raise Unsupported(f"a verdict map keyed on {expr!r} & {mask:#x} (not a number)",
                                  rule.loc)
            return v & mask
        return masked

    @staticmethod
    def _check_element_stmts(per_element, rule):
        """Per-element counters count, they change neither the packet nor the verdict, so the
        lookup is evaluated as without them; any other per-element statement is refused."""
        for stmts in per_element:
            for st in stmts:
                if not isinstance(st, ir.Counter):
                    raise Unsupported(f"per-element {ir.construct_name(st)} in a set",
                                      rule.loc)

    def _compile_setmatch(self, m, rule: ir.Rule, table: ir.Table):
        self._check_element_stmts(m.element_stmts, rule)
        lookup = self._compile_keyed(m.keys, self._set_elements(m, rule, table), rule)
        neg = m.negate
        # (a set with per-element limits was refused by _set_elements above)
        updated = m.name in self._sets_updated.get((table.family, table.name), ())
        changes = self._set_changes.setdefault((table.family, table.name, m.name), {}) \
            if updated else None
        readers = [self._field_reader(k, rule) for k in m.keys] if updated else ()

        def setmatch(p):
            if changes:  # an element the rules added (True) or deleted (False) this case
                key = tuple(rd(p) for rd in readers)
                if key in changes:
                    return changes[key] != neg
            i = lookup(p)
            if i is None:
                return False
            return (i >= 0) != neg
        return setmatch, {"fields"}, not updated and \
            not any(k.startswith("numgen ") for k in m.keys)

    # ------------------------------------------------------------------ statements

    def _compile_statement(self, s, rule: ir.Rule, table: ir.Table, chain: ir.Chain):
        """-> (fn(skb, trace_list, where) , fields read)."""
        T = type(s)
        if T in (ir.Log, ir.NfLog):
            text = f"log{' prefix ' + repr(s.prefix) if s.prefix else ''}"
            return (lambda p, emit: emit(text)), set()
        if T in (ir.Counter, ir.Trace, ir.Checksum):
            text = T.__name__.lower()
            return (lambda p, emit: emit(text)), set()
        if T is ir.NamedCounter:
            text = f"counter name {s.name}"
            return (lambda p, emit: emit(text)), set()
        if T is ir.SetUpdate:
            if s.set in self._sets_limited.get((table.family, table.name), ()):
                raise Unsupported(f"set @{s.set} keeps per-element limits; such dynamic sets are "
                                  "not simulated", rule.loc)
            changes = self._set_changes.setdefault((table.family, table.name, s.set), {})
            readers = [self._field_reader(k, rule) for k in s.keys]
            present = s.op != "delete"
            size, declared, count = self._set_size(s, rule, table)

            def setupdate(p, emit):
                key = tuple(rd(p) for rd in readers)
                if any(v is nftf.ABSENT for v in key):
                    emit(f"{s.op} @{s.set}: the packet has no {' . '.join(s.keys)}: the rule "
                         "stops here (nft)")
                    return _STOP
                if size is not None:  # nft_dynset: a new element needs a free slot
                    if key in changes:
                        before = changes[key]
                    else:
                        at = declared(p)
                        before = at is not None and at >= 0
                    if present and not before:
                        if count["count"] >= size:
                            emit(f"{s.op} @{s.set}: the set is full (size {size}): the rule "
                                 "stops here (nft)")
                            return _STOP
                        count["count"] += 1
                    elif before and not present:
                        count["count"] -= 1
                changes[key] = present  # (a timeout outlives the case: cases take no time)
                emit(f"{s.op} @{s.set}")
                return None
            return setupdate, {"fields"}
        if T is ir.IpsetUpdate:
            changes = self._ipset_changes.setdefault(s.name, {})
            add = s.op == "add"

            def ipset_update(p, emit):
                # (an element with a timeout outlives the case: cases take no time)
                changes[(p.l3,) + tuple(getattr(p, f) for f in s.fields)] = add
                emit(f"SET {'add to' if add else 'delete from'} {s.name}")
            return ipset_update, {"l3", "src", "dst"}
        if T is ir.SetMark:
            val, mask = s.value, s.mask
            if s.kind == "meta":
                def setmark(p, emit):
                    p.mark = ir.shifted((p.mark & ~mask) ^ val, s.shift)
                    emit(f"meta mark set {p.mark:#x}")
                return setmark, {"mark"}

            def setctmark(p, emit):
                if p.ct is not None:
                    p.ct.mark = ir.shifted((p.ct.mark & ~mask) ^ val, s.shift)
                    emit(f"ct mark set {p.ct.mark:#x}")
                else:
                    emit("ct mark set: no conntrack entry, no effect")
            return setctmark, {"ct_mark", "ct_state"}
        if T is ir.CopyMark:
            sm, dm = s.src_mask, s.dst_mask

            def copymark(p, emit):
                if p.ct is None:
                    emit("connmark: no conntrack entry, no effect")
                elif s.to == "ct":
                    # (xt_CONNMARK's xor)
                    p.ct.mark = ((p.ct.mark & ~dm) ^ ir.shifted(p.mark & sm, s.shift)) & 0xFFFFFFFF
                    emit(f"ct mark set {p.ct.mark:#x} (saved from meta mark)")
                else:
                    p.mark = ((p.mark & ~dm) ^ ir.shifted(p.ct.mark & sm, s.shift)) & 0xFFFFFFFF
                    emit(f"meta mark set {p.mark:#x} (restored from ct mark)")
            return copymark, {"mark", "ct_mark", "ct_state"}
        if T is ir.Notrack:
            def notrack(p, emit):
                if p.ct_state is None:
                    p.notrack = True
                    emit("notrack")
                else:
                    emit("notrack: conntrack already ran, no effect")
            return notrack, {"ct_state"}
        if T is ir.CtHelperSet:
            name = s.name
            self._helper_locs.setdefault(name, rule.loc)
            if name not in HELPERS:
                # refused when a packet reaches it: packets that do not are still simulated
                why = Unsupported(f"conntrack helper {name!r} (simulated helpers: "
                                  f"{', '.join(sorted(HELPERS))})", rule.loc)

                def unknown_helper(p, emit):
                    raise why
                return unknown_helper, {"ct_state"}
            protos, families = ir.KERNEL_HELPERS[name]
            template = s.template

            def helperset(p, emit):
                if p.proto not in protos:
                    emit(f"ct helper {name}: wrong protocol, no effect")
                elif p.family not in families:  # (nft's inet helper object found no helper)
                    emit(f"ct helper {name}: the kernel has it for IPv4 only, no effect")
                elif p.ct_state is None and not template:
                    emit(f"ct helper set {name}: before conntrack, no entry to set it on, "
                         "no effect")
                elif p.ct_state is None:
                    p.tmpl_helper = name
                    emit(f"ct helper set {name} (template for new connections)")
                elif p.ct is not None and not p.ct.confirmed and p.ct.helper is None:
                    p.ct.helper = name
                    emit(f"ct helper set {name}")
                else:
                    emit(f"ct helper {name}: connection not new, no effect")
            return helperset, {"ct_state", "ct_helper", "proto"}
        if T is ir.FieldSet:
            return self._compile_fieldset(s, rule)
        if T is ir.CtZoneSet:
            zone = s.zone

            def zoneset(p, emit):
                if p.ct_state is None:
                    p.tmpl_zone = zone
                    emit(f"ct zone set {zone}")
            return zoneset, {"ct_state"}
        if T is ir.TcpMss:
            return (lambda p, emit: emit("tcp mss clamp")), set()
        if T is ir.SetTtl:
            op, val = s.op, s.value

            def setttl(p, emit):
                p.ttl = val if op == "set" else (p.ttl + val if op == "inc" else p.ttl - val)
                p.ttl &= 0xFF
                emit(f"ttl set {p.ttl}")
            return setttl, {"ttl"}
        if T is ir.SetDscp:
            val = s.value

            def setdscp(p, emit):
                p.tos = (p.tos & 0x3) | (val << 2)
                emit(f"dscp set {val}")
            return setdscp, {"tos"}
        if T is ir.SetTos:
            val, mask = s.value, s.mask

            def settos(p, emit):
                p.tos = ((p.tos & ~mask) ^ val) & 0xFF
                emit(f"tos set {p.tos:#x}")
            return settos, {"tos"}
        raise Unsupported(f"{ir.construct_name(s)} is not simulated", rule.loc)

    # ------------------------------------------------------------------ verdicts

    def _compile_verdict(self, v, rule: ir.Rule, table: ir.Table, chain: ir.Chain,
                         is_nat: bool):
        if v is None or isinstance(v, ir.Continue):
            return None
        T = type(v)
        if T is ir.Accept:
            return ("accept",)
        if T is ir.Drop:
            return ("drop",)
        if T is ir.Reject:
            return ("reject", v.with_)
        if T in (ir.Jump, ir.Goto):
            key = (table.family, table.name, v.chain)
            if key not in self._chains:
                raise Unsupported(f"{T.__name__.lower()} to undefined chain {v.chain!r}",
                                  rule.loc)
            return (T.__name__.lower(), key)
        if T is ir.Return:
            return ("return",)
        if T is ir.Queue:
            return ("queue", v.bypass)
        if T is ir.VerdictMap:
            # elements are (key tuple, verdict) pairs, inline or in a named map
            elems = self._set_elements(v, rule, table) if v.name else v.elements
            keys = [e[0] if isinstance(e[0], tuple) else (e[0],) for e in elems]
            verdicts = [self._compile_verdict(e[1], rule, table, chain, is_nat) for e in elems]
            self._check_element_stmts(v.element_stmts, rule)
            lookup = self._compile_keyed(v.keys, keys, rule, v.key_masks)
            return ("vmap", lookup, verdicts)
        if T is ir.NatMap:
            # the element the key finds gives the NAT target; no element: the rule goes on
            if chain.base is not None and not is_nat:
                raise Unsupported(f"{v.kind} map outside a nat chain (chain {chain.name})",
                                  rule.loc)
            elems = self._set_elements(v, rule, table) if v.name else v.elements
            keys = [e[0] if isinstance(e[0], tuple) else (e[0],) for e in elems]
            verdicts = [self._compile_verdict(_nat_of(v, e[1], rule), rule, table, chain, is_nat)
                        for e in elems]
            lookup = self._compile_keyed(v.keys, keys, rule)
            l3 = 4 if v.family == "ip" else 6
            if v.kind == "redirect":
                return ("vmap", lookup, verdicts)
            return ("vmap", lambda p: lookup(p) if p.l3 == l3 else None, verdicts)
        if T in (ir.Snat, ir.Dnat, ir.Masquerade, ir.Redirect, ir.Netmap):
            if chain.base is not None and not is_nat:
                raise Unsupported(f"{ir.construct_name(v)} outside a nat chain (chain {chain.name})",
                                  rule.loc)
            return ("nat", v)
        raise Unsupported(f"{ir.construct_name(v)} is not simulated", rule.loc)

    # ------------------------------------------------------------------ chain evaluation

    def _candidates(self, comp: _Compiled, p: Skb):
        if comp.index is None:
            return comp.rules
        key = (p.proto, p.dport)
        cand = comp.cand.get(key)
        if cand is None:
            cand = []
            for r in comp.rules:
                pre = r.pre
                if pre is not None:
                    protos, ports = pre
                    if protos is not None and p.proto not in protos:
                        continue
                    if ports is not None and (p.dport is None or not _in_any(p.dport, ports)):
                        continue
                cand.append(r)
            if len(comp.cand) < 65536:
                comp.cand[key] = cand
        return cand

    def _run_chain(self, key, p: Skb, trace: list, where: dict, depth: int):
        """Evaluate chain `key`; returns a verdict tuple, or None when it returns/falls off."""
        if depth > 64:
            raise Unsupported(f"jump depth over 64 at chain {key[2]} (a loop?)", ir.NOLOC)
        comp = self._chains[key]
        for r in self._candidates(comp, p):
            for m in r.matches:
                if not m(p):
                    if p.notes:
                        self._flush_notes(p, trace, where, comp, r)
                    break
            else:
                rec = {**where, "chain": comp.name, "rule": r.num, "loc": str(r.loc)}

                def emit(text, rec=rec):
                    trace.append({**rec, "action": text})
                stopped = False
                for s in r.stmts:
                    if s(p, emit) is _STOP:
                        stopped = True
                        break
                if p.notes:
                    self._flush_notes(p, trace, where, comp, r)
                if stopped:
                    continue
                v = r.verdict
                while v is not None and v[0] == "vmap":
                    i = v[1](p)
                    if p.notes:  # (what the map's key read, e.g. a numgen draw)
                        self._flush_notes(p, trace, where, comp, r)
                    v = v[2][i] if i is not None and i >= 0 else None
                    if v is None:
                        emit("vmap: no element matched")
                if v is None:
                    continue
                kind = v[0]
                if kind == "jump":
                    emit(f"jump {v[1][2]}")
                    res = self._run_chain(v[1], p, trace, where, depth + 1)
                    if res is not None:
                        return res
                    continue
                if kind == "goto":
                    emit(f"goto {v[1][2]}")
                    return self._run_chain(v[1], p, trace, where, depth + 1)
                if kind == "return":
                    emit("return")
                    return None
                emit(_verdict_text(v))
                return v + (rec,) if kind == "nat" else v
        return None

    @staticmethod
    def _flush_notes(p: Skb, trace: list, where: dict, comp: _Compiled, r: _Rule) -> None:
        for n in p.notes:
            trace.append({**where, "chain": comp.name, "rule": r.num, "loc": str(r.loc),
                          "action": n})
        p.notes.clear()

    def _base_chain(self, stage, p: Skb, hook: str, trace: list):
        """Run one base chain; returns ('accept'|'drop'|'reject', ...)."""
        _, table, chain, comp = stage
        where = {"hook": hook, "table": f"{table.family} {table.name}"}
        key = (table.family, table.name, chain.name)
        if comp.cacheable and self.opt.cache:
            ck = self._cache_key(comp, p)
            hit = self._cache.get((key, ck))
            if hit is not None:
                verdict, effects, entries = hit
                if effects is not None:
                    _apply_effects(p, effects)
                trace.extend(entries)
                return verdict
            before = _effects(p)
            local: list = []
            verdict = self._base_verdict(key, chain, p, local, where)
            after = _effects(p)
            if len(self._cache) < 1_000_000:
                self._cache[(key, ck)] = (verdict, after if after != before else None,
                                          tuple(local))
            trace.extend(local)
            return verdict
        return self._base_verdict(key, chain, p, trace, where)

    def _base_verdict(self, key, chain: ir.Chain, p: Skb, trace: list, where: dict,
                      nat_ok: bool = False):
        v = self._run_chain(key, p, trace, where, 0)
        if v is None:
            pol = chain.base.policy
            trace.append({**where, "chain": chain.name, "rule": None, "loc": str(chain.loc),
                          "action": f"policy {pol}"})
            return ("accept",) if pol == "accept" else ("drop",)
        if v[0] == "nat" and not nat_ok:
            raise Unsupported(f"{_verdict_text(v)} reached from non-nat base chain {chain.name}",
                              ir.Loc(*_loc_parts(v[2]["loc"])))
        if v[0] == "queue":
            if v[1]:
                trace.append({**where, "chain": chain.name, "rule": None, "loc": None,
                              "action": "queue: no listener, bypass -> accept"})
                return ("accept",)
            trace.append({**where, "chain": chain.name, "rule": None, "loc": None,
                          "action": "queue: no listener -> drop"})
            return ("drop",)
        return v

    def _cache_key(self, comp: _Compiled, p: Skb):
        keyfn = self._keyfns.get(id(comp))
        if keyfn is None:
            keyfn = _make_keyfn(comp.reads)
            self._keyfns[id(comp)] = keyfn
        return keyfn(p)

    # ------------------------------------------------------------------ NAT stage

    def _nat_stage(self, stage, p: Skb, hook: str, trace: list):
        _, manip, chains = stage
        ct = p.ct
        if ct is None:
            return ("accept",)
        is_error = p.proto in ICMP_PROTOS and p.quote is not None and p.ct_state == "RELATED"
        if is_error and p.l3 == 4 and p.icmp_type == 5 and (
                ct.nat_done != {"SRC", "DST"} or ct.status & {"SNAT", "DNAT"}):
            # nf_nat_icmp_reply_translation: NAT does not translate a redirect about a NATed
            # connection (or one whose NAT is not set up both ways); its hook drops it
            trace.append({"hook": hook, "table": None, "chain": None, "rule": None, "loc": None,
                          "action": "nat: an ICMP redirect about a NATed connection -> drop"})
            return ("drop",)
        if ct.follow is not None and not ct.confirmed and not ct.nat_done:
            # nf_nat_follow_master, at the entry's creation: the source becomes where the
            # master sends to, the destination the master's peer at the announced port
            master, d, port = ct.follow
            t = master.tuples[d]
            try:
                texts = [setup_binding(self.conntrack, ct, "SRC", t[3], None),
                         setup_binding(self.conntrack, ct, "DST", t[2], (port, port))]
            except NoFreeTuple:
                return ("drop",)
            trace.append({"hook": hook, "table": None, "chain": None, "rule": None, "loc": None,
                          "action": "nat as the master connection (helper): " +
                          "; ".join(texts)})
        if not is_error and manip not in ct.nat_done and not ct.confirmed:
            for table, chain, comp in chains:
                where = {"hook": hook, "table": f"{table.family} {table.name}"}
                v = self._base_verdict((table.family, table.name, chain.name), chain, p,
                                       trace, where, nat_ok=True)
                if v[0] in ("drop", "reject"):
                    return v
                if v[0] == "nat":
                    text = self._bind(v[1], manip, p, hook, v[2])
                    if text is None:
                        trace.append({**v[2], "action": "nat: no address for this family or "
                                      "interface -> drop"})
                        return ("drop",)
                    trace.append({**v[2], "action": text})
                    break
            if manip not in ct.nat_done:
                # the null binding: the tuple stays unless its reply is another connection's
                # (a reply to it would be that one's), then the kernel moves the port
                # (get_unique_tuple) and the entry has SNAT/DNAT status
                before = ct.tuples[1]
                try:
                    text = setup_binding(self.conntrack, ct, manip, None, None,
                                         loc=chains[0][1].loc if chains else None)
                except NoFreeTuple:
                    trace.append({"hook": hook, "table": None, "chain": None, "rule": None,
                                  "loc": None, "action": "nat: no free tuple -> drop"})
                    return ("drop",)
                if ct.tuples[1] != before:
                    trace.append({"hook": hook, "table": None, "chain": None, "rule": None,
                                  "loc": None, "action": f"nat: the reply tuple is taken: null "
                                                       f"{text}"})
        text = manip_packet(p, manip)
        if text:
            trace.append({"hook": hook, "table": None, "chain": None, "rule": None, "loc": None,
                          "action": text})
        return ("accept",)

    def _bind(self, v, manip: str, p: Skb, hook: str, rec: dict) -> Optional[str]:
        T = type(v)
        want = "SRC" if T in (ir.Snat, ir.Masquerade) or \
            (T is ir.Netmap and v.field == "saddr") else "DST"
        if want != manip:
            raise Unsupported(f"{T.__name__} in a {hook} nat chain",
                              ir.Loc(*_loc_parts(rec["loc"])))
        addr, ports = None, None
        if T in (ir.Snat, ir.Dnat):
            target = None
            for t in v.to:
                if t.addr is None or t.addr.version == p.l3:
                    target = t
                    break
            if target is None:
                return None
            if target.addr is not None:
                a = target.addr  # a range or prefix: the kernel hashes the addresses to pick one
                addr = (int(a.lo), int(a.hi)) if isinstance(a, ir.AddrRange) else \
                    (int(a.network_address), int(a.broadcast_address))
            if target.ports is not None:
                ports = (target.ports.lo, target.ports.hi)
        elif T is ir.Masquerade:
            addr = self.masquerade_addr(p.oif, p.l3, p.dst,
                                        p.src if p.dir == "out" else None)
            if addr is None:
                return None
            ports = (v.ports.lo, v.ports.hi) if v.ports else None
        elif T is ir.Redirect:
            if hook == "output":
                addr = 0x7F000001 if p.l3 == 4 else 1
            else:
                addr = self.redirect_addr(p.iif, p.l3, p.dst)
                if addr is None:
                    return None
            ports = (v.ports.lo, v.ports.hi) if v.ports else None
        elif T is ir.Netmap:
            net = v.to
            if net.version != p.l3:
                return None
            hostmask = int(net.hostmask)
            cur = p.src if manip == "SRC" else p.dst
            addr = (cur & hostmask) | int(net.network_address)
        try:
            return f"{T.__name__.lower()}: " + setup_binding(
                self.conntrack, p.ct, manip, addr, ports, getattr(v, "flags", frozenset()),
                ir.Loc(*_loc_parts(rec["loc"])))
        except NoFreeTuple:
            return None

    # ------------------------------------------------------------------ packets and cases

    def run_packet(self, pkt: Packet, trace: Optional[list] = None,
                   quote: Optional[tuple] = None) -> tuple[str, Optional[str], Skb]:
        """Send one packet through its hooks.  -> (verdict, ct state seen by filter, skb)."""
        p = Skb(pkt, self.opt.ttl)
        p.own = self._own_key
        p.now_ns = self.opt.clock_ns if self.opt.clock_ns is not None else time.time_ns()
        p.quote = quote
        if quote is not None:  # an ICMP error carries the quoted IP header + 8 bytes
            p.length += (20 if p.l3 == 4 else 40) + 8
        if trace is None:
            trace = []
        seen_state = None
        hooks = PATHS[p.dir]
        dst_before = p.dst
        if p.l3 == 6 and p.dir != "out" and p.iif != "lo":
            why = _ip6_rcv_drop(p)
            if why:  # ip6_rcv_core: before any hook
                trace.append({"hook": "prerouting", "table": None, "chain": None, "rule": None,
                              "loc": None, "action": f"ipv6 receive: {why}: dropped"})
                return "DROP", None, p
        i = 0
        while i < len(hooks):
            hook = hooks[i]
            i += 1
            if hook in ("input", "forward") and p.l3 == 4 and p.dir != "out" and \
                    p.iif != "lo":
                why = self._martian(p)
                if why:  # ip_route_input_slow, after prerouting
                    trace.append({"hook": "prerouting", "table": None, "chain": None,
                                  "rule": None, "loc": None, "action": f"routing: {why}: dropped"})
                    return "DROP", seen_state, p
            if hook in ("input", "forward") and p.dst != dst_before:
                # routing happens after prerouting: a destination NAT may turn a packet for
                # the firewall into a forwarded one, or the other way round
                hooks, p.dir = self._reroute(p, hooks, trace)
                if hooks[i - 1] != hook:
                    hook = hooks[i - 1]
            if hook == "forward":  # ip_forward / ip6_forward decrement before the FORWARD hook
                p.ttl -= 1
            v, looked_up = self._run_hook(p, hook, trace, lookup=True)
            if looked_up:
                seen_state = p.ct_state
            if v is not None:
                return v, seen_state, p

        def note(text):
            trace.append({"hook": PATHS[p.dir][-1], "table": None, "chain": None, "rule": None,
                          "loc": None, "action": text})
        try:
            helped = run_helper(self.conntrack, p, note)
        except HelperNotModelled as e:  # (located at the rule that assigned the helper)
            raise Unsupported(str(e), self._helper_locs.get(p.ct.helper, ir.NOLOC)) from None
        if not helped:
            return "DROP", seen_state, p
        self.conntrack.confirm(p, note)
        if p.dir == "out" and self.addr_type(p.l3, p.dst) == "LOCAL":
            return self._loop_back(p, trace, seen_state)
        return "ACCEPT", seen_state, p

    def _loop_back(self, p: Skb, trace: list, seen_state):
        """A local packet for the host itself (addressed so, or made so by a destination NAT:
        REDIRECT, DNAT to an own address): it comes back in over lo through prerouting and
        input, keeping its conntrack
        entry (the kernel does not look it up again, nor run nat chains of a set-up binding)."""
        trace.append({"hook": "postrouting", "table": None, "chain": None, "rule": None,
                      "loc": None, "action": "routing: the new destination is local: back in "
                                             "over lo"})
        p.iif, p.oif = "lo", None
        for hook in PATHS["in"]:
            v, _ = self._run_hook(p, hook, trace, lookup=False)
            if v is not None:
                return v, seen_state, p
        return "ACCEPT", seen_state, p

    def _run_hook(self, p: Skb, hook: str, trace: list, lookup: bool):
        """The stages of `hook` in priority order: (DROP|REJECT verdict, or None when the packet
        goes on; whether the conntrack lookup ran -- skipped with lookup=False)."""
        looked_up = False
        for stage in self._stages[(hook, p.l3)]:
            kind = stage[0]
            if kind == "ct":
                if lookup:
                    self.conntrack.lookup(p, lambda text: trace.append(
                        {"hook": hook, "table": None, "chain": None, "rule": None, "loc": None,
                         "action": text}))
                    looked_up = True
                continue
            v = self._base_chain(stage, p, hook, trace) if kind == "chain" \
                else self._nat_stage(stage, p, hook, trace)
            if v[0] == "drop":
                return "DROP", looked_up
            if v[0] == "reject":
                local_dst = p.dir == "in" or self.addr_type(p.l3, p.dst) == "LOCAL"
                if not _answerable(p, v, local_dst):
                    return "DROP", looked_up
                if v[1] == "tcp-reset" and p.ct is not None:
                    # nf_send_reset: nf_ct_set_closing moves a confirmed TCP entry to CLOSE
                    self.conntrack.set_closing(p.ct, lambda text: trace.append(
                        {"hook": hook, "table": None, "chain": None, "rule": None, "loc": None,
                         "action": text}))
                return "REJECT", looked_up
        return None, looked_up

    def _martian(self, p: Skb) -> Optional[str]:
        """Why the kernel's IPv4 input routing drops a packet that came from outside
        (ip_route_input_slow, with rp_filter, accept_local and route_localnet off), or None."""
        src, dst = p.src, p.dst
        if src >> 28 == 0xE or src == 0xFFFFFFFF:
            return "martian source (multicast or limited broadcast)"
        if dst >> 28 == 0xE:  # ip_route_input_mc's own source checks
            if src >> 24 == 127:
                return "martian source (loopback)"
            if src >> 24 == 0 and dst >> 8 != 0xE00000 and p.proto != 2:
                return "martian source (0.0.0.0/8, to a multicast group beyond 224.0.0.0/24)"
            if src >> 24 != 0 and self.addr_type(4, src) == "LOCAL":
                return "martian source (an address of the host itself)"
            if dst != 0xE0000001:
                # ip_check_mc_rcu: the host has joined only 224.0.0.1 (all hosts), and nothing
                # is multicast-forwarded
                return "a multicast group the host has not joined"
            return None
        if dst == 0xFFFFFFFF or (src == 0 and dst == 0):
            return None  # broadcast input
        if src >> 24 == 0:
            return "martian source (0.0.0.0/8)"
        if dst >> 24 == 0:
            return "martian destination (0.0.0.0/8)"
        if dst >> 24 == 127:
            return "martian destination (loopback)"
        if src >> 24 == 127:
            return "martian source (loopback)"
        if self.addr_type(4, src) == "LOCAL":  # (fib_validate_source: an own address)
            return "martian source (an address of the host itself)"
        return None

    def _reroute(self, p: Skb, hooks: tuple, trace: list) -> tuple[tuple, str]:
        local = self.addr_type(p.l3, p.dst) == "LOCAL"
        if p.dir == "in" and not local:
            p.oif = self.route_oif(p.l3, p.dst)
            trace.append({"hook": "prerouting", "table": None, "chain": None, "rule": None,
                          "loc": None, "action": f"routing: the new destination is not local: "
                                                 f"forwarded out of {p.oif}"})
            return PATHS["fwd"], "fwd"
        if p.dir == "fwd" and local:
            p.oif = None
            trace.append({"hook": "prerouting", "table": None, "chain": None, "rule": None,
                          "loc": None, "action": "routing: the new destination is local: input"})
            return PATHS["in"], "in"
        if p.dir == "fwd":
            p.oif = self.route_oif(p.l3, p.dst)
            trace.append({"hook": "prerouting", "table": None, "chain": None, "rule": None,
                          "loc": None, "action": f"routing: the new destination leaves by {p.oif}"})
        return hooks, p.dir

    def route_oif(self, l3: int, dst: int) -> Optional[str]:
        """The interface whose connected network holds `dst`, else the default route's
        (SimOptions.default_route)."""
        for name, addrs in self.iface_addrs.items():
            for a in addrs:
                if a.version == l3 and name != "lo" and \
                        int(a.network.network_address) <= dst <= int(a.network.broadcast_address):
                    return name
        return self.opt.default_route

    def reset(self) -> None:
        """Empty the conntrack table and per-case counters (each case starts from scratch)."""
        self.conntrack = ConntrackTable(self.opt.tcp_loose, self.opt.interfaces)
        for state in self._per_case_state:
            state["count"] = state["init"]
        self._recent_lists.clear()
        self._connlimit_lists.clear()
        for changes in (*self._ipset_changes.values(), *self._set_changes.values()):
            changes.clear()

    def run_case(self, case: Case) -> CaseResult:
        self.reset()
        # the host owns what the case sends to it and from it: an `in` packet's destination
        # (on its interface) and an `out` packet's source, as the kernel harness sets up
        # before the case (a packet reaches input only for an address of the host)
        self.own = {}  # (empty while the candidates are typed below)
        own = {(p.l3, int(p.dst) if p.dir == "in" else int(p.src)):
               (p.iif or self.opt.default_route) if p.dir == "in" else None
               for p in (*case.setup, case.probe) if p.dir in ("in", "out")}
        # (a broadcast or multicast destination is no address of the host's)
        self.own = {k: d for k, d in own.items() if self.addr_type(*k) == "UNICAST"}
        self._own_key = frozenset(self.own)
        wires: list[tuple] = []
        setup_verdicts = []
        for i, pkt in enumerate(case.setup):
            quote = wires[pkt.quote] if pkt.quote is not None else None
            verdict, _state, skb = self.run_packet(pkt, None, quote)
            setup_verdicts.append(verdict)
            # an ICMP error quotes a packet as the far side got it (NATed) when it left the
            # box; one that never left (dropped, or made local by a destination NAT) only
            # ever reaches anyone as it was sent
            left = verdict == "ACCEPT" and skb.dir in ("fwd", "out") and skb.iif != "lo"
            wires.append(skb.tuple() if left else Skb(pkt, self.opt.ttl).tuple())
        trace: list = []
        quote = wires[case.probe.quote] if case.probe.quote is not None else None
        verdict, state, _skb = self.run_packet(case.probe, trace, quote)
        return CaseResult(case.name, verdict, state, tuple(setup_verdicts), tuple(trace))

    def conntrack_listing(self) -> list[str]:
        return self.conntrack.listing()


def _nat_of(v: ir.NatMap, target, rule: ir.Rule):
    """A NatMap element's value as the NAT verdict it applies."""
    got = ir.nat_map_verdict(v, target)
    if got is None:
        raise Unsupported(f"{v.kind} map value {target!r}", rule.loc)
    return got


def _v6_scope(a: int) -> str:
    """An IPv6 address's scope as the kernel's ipv6_addr_scope ranks it."""
    if a == 1:
        return "host"
    if a >> 120 == 0xFF:  # multicast: its scope field
        return {1: "host", 2: "link", 5: "site"}.get((a >> 112) & 0xF, "global")
    if a >> 118 == 0x3FA:  # fe80::/10
        return "link"
    if a >> 118 == 0x3FB:  # fec0::/10
        return "site"
    return "global"


def _loc_parts(text: Optional[str]):
    if not text:
        return ("<input>", 0, 0)
    f, _, rest = text.rpartition(":")
    f2, _, line = f.rpartition(":")
    try:
        return (f2, int(line), int(rest))
    except ValueError:
        return (text, 0, 0)


def _targets(verdict) -> list[str]:
    if verdict is None:
        return []
    if verdict[0] in ("jump", "goto"):
        return [verdict[1][2]]
    if verdict[0] == "vmap":
        return [t for v in verdict[2] for t in _targets(v)]
    return []


def _verdict_text(v) -> str:
    kind = v[0]
    if kind == "reject":
        return f"reject{' with ' + v[1] if v[1] else ''}"
    if kind == "queue":
        return "queue"
    if kind == "nat":
        return type(v[1]).__name__.lower()
    return kind


_KEY_EXPR = {
    "own": "p.own",
    "l3": "p.l3", "dir": "p.dir", "proto": "p.proto", "src": "p.src", "dst": "p.dst",
    "sport": "p.sport", "dport": "p.dport", "flags": "p.flags",
    "icmp": "p.icmp_type, p.icmp_code", "iif": "p.iif", "oif": "p.oif", "mark": "p.mark",
    "length": "p.length", "ttl": "p.ttl", "tos": "p.tos",
    "ct_state": "p.ct_state, p.ct is None, p.notrack",
    "ct_dir": "p.ct_dir",
    "ct_status": "(frozenset(p.ct.status) if p.ct is not None else None)",
    "ct_mark": "(p.ct.mark if p.ct is not None else None)",
    "ct_tuples": "(tuple(p.ct.tuples) if p.ct is not None else None)",
    "ct_helper": "(p.ct.helper if p.ct is not None else None), "
                 "(p.ct.master.helper if p.ct is not None and p.ct.master is not None else None),"
                 " (p.ct.confirmed if p.ct is not None else None), p.tmpl_helper",
    "ct_timeout": "(p.ct.timeout() if p.ct is not None else None)",
    "clock": "p.now_ns",
    "tmpl": "p.tmpl",
    "ct_labels": "(p.ct.labels if p.ct is not None else None)",
    "ct_master": "(tuple(p.ct.master.tuples) if p.ct is not None and p.ct.master is not None "
                 "else None)",
}


def _make_keyfn(reads: set) -> Callable[[Skb], tuple]:
    if "fields" in reads:  # generic nft expressions may read anything (but `own`: see above)
        reads = set(_KEY_EXPR) - {"own"} | (reads & {"own"})
    names = sorted(set(reads) | {"l3", "dir", "ct_state"})
    body = ", ".join(_KEY_EXPR[n] for n in names)
    return eval(f"lambda p: ({body},)")  # noqa: S307  (built from the fixed table above)


def _effects(p: Skb) -> tuple:
    ct = p.ct
    return (p.mark, p.notrack, p.tmpl_helper, p.tmpl_zone, p.ttl, p.tos,
            ct.mark if ct is not None else None, ct.helper if ct is not None else None,
            ct.labels if ct is not None else None, p.tmpl)


def _apply_effects(p: Skb, e: tuple) -> None:
    p.mark, p.notrack, p.tmpl_helper, p.tmpl_zone, p.ttl, p.tos = e[:6]
    p.tmpl = e[9]
    if p.ct is not None:  # (everything a chain can change about the entry: a cache hit
        p.ct.mark, p.ct.helper, p.ct.labels = e[6], e[7], e[8]  # replays it)


def simulate(ruleset: ir.Ruleset, cases: list[Case],
             options: Optional[SimOptions] = None) -> list[CaseResult]:
    """Run every case (each from an empty conntrack table) and return its result."""
    sim = Simulator(ruleset, options)
    return [sim.run_case(c) for c in cases]


def _fits(key: str, v) -> bool:
    """Whether a --set element's value fits its key: a port in 16 bits, an address (or
    network, range) of the key's family."""
    if key.endswith(("sport", "dport")) and isinstance(v, int):
        return 0 <= v <= 65535
    fam = 4 if key.startswith("ip ") else 6 if key.startswith("ip6 ") else None
    if fam is not None:
        if isinstance(v, ir.AddrRange):
            return v.lo.version == fam
        version = getattr(v, "version", None)
        return version is None or version == fam
    return True


def _ip6_rcv_drop(p: Skb) -> Optional[str]:
    """Why ip6_rcv_core drops a packet that came from outside, before any hook, or None."""
    src, dst = p.src, p.dst
    if src >> 120 == 0xFF:
        return "multicast source"
    if src == 1 or dst == 1:
        return "loopback address from outside"
    if dst >> 120 == 0xFF and (dst >> 112) & 0xF in (0, 1):
        return "multicast destination of scope 0 or interface-local"
    return None


# ICMP types the kernel never sends an error about (__icmp_send: an error type, or one
# icmp_pointers discards, or unknown; icmp6_send: no informational bit)
ICMP_ERROR_TYPES = {4: frozenset({1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12}) | frozenset(range(19, 256)),
                    6: frozenset(range(0, 128))}


_V4MAPPED = (0xFFFF << 32, (0xFFFF << 32) | 0xFFFFFFFF)  # ::ffff:0:0/96


def _answerable(p: Skb, v: tuple, local_dst: bool = True) -> bool:
    """Does the kernel send the REJECT's answer?  It never answers a RST with a RST, nor an
    ICMP error (or an ICMP type it discards or does not know) with an ICMP error; such a
    packet is dropped silently.
    An ICMPv6 error comes from the packet's destination when that is the host's own address;
    from an IPv4-mapped one (::ffff:a.b.c.d) to an ordinary address IPv6 routing refuses to
    send it (ip6_dst_lookup_tail: EAFNOSUPPORT)."""
    kind = v[1] if len(v) > 1 else None
    if kind == "tcp-reset":
        return p.proto == 6 and not p.flags & 0x04
    if p.l3 == 6 and local_dst and _V4MAPPED[0] <= p.dst <= _V4MAPPED[1] and \
            not (_V4MAPPED[0] <= p.src <= _V4MAPPED[1] or p.src == 0):
        return False
    return not (p.icmp_type is not None and p.icmp_type in ICMP_ERROR_TYPES[p.l3])


def _template_stmt(s) -> bool:
    """A statement that attaches a conntrack template (or the untracked mark) before conntrack:
    iptables' CT target (--notrack, --zone, --helper), nft's notrack and ct zone set."""
    return isinstance(s, (ir.Notrack, ir.CtZoneSet)) or \
        (isinstance(s, ir.CtHelperSet) and s.template)


def _first_template_wins(rule: ir.Rule, stmts: list) -> bool:
    """Once a packet carries a template or the untracked mark, a later CT target does nothing
    (xt_CT: "Previously seen? Ignore."; nft's notrack and zone set likewise return when the
    packet has one); the statements of one CT target (`--helper ftp --zone 1`) act together.
    (nft's `ct zone set` after its `notrack` would track the packet: not modelled, README.)"""
    idx = [i for i, s in enumerate(rule.statements) if _template_stmt(s)]
    if not idx:
        return False
    shared = {"skip": False}
    for i in idx:
        inner = stmts[i]

        def wrapped(p, emit, inner=inner, first=(i == idx[0])):
            if first:
                shared["skip"] = p.ct_state is None and p.tmpl
            if shared["skip"]:
                emit("the packet already has a conntrack template: no effect")
                return None
            out = inner(p, emit)
            if p.ct_state is None:
                p.tmpl = True
            return out
        stmts[i] = wrapped
    return True


def _first_key_index(compiled: list) -> Optional[tuple]:
    """(starts, [(interval, element indexes in order)]) when the elements' first-key
    intervals are numbers and, grouped where equal, disjoint (sets, and concatenations keyed
    by address or port first): a lookup bisects instead of trying every element.  None
    otherwise (names, overlapping prefixes), or for a handful of elements."""
    if len(compiled) < 16:
        return None
    groups: dict = {}
    for i, ivs in enumerate(compiled):
        iv = ivs[0]
        if len(iv) != 2 or not isinstance(iv[0], int) or not isinstance(iv[1], int):
            return None
        groups.setdefault(iv, []).append(i)
    order = sorted(groups.items())
    if any(a[0][1] >= b[0][0] for a, b in zip(order, order[1:])):
        return None
    return [iv[0] for iv, _ in order], order
