"""Hypothesis strategies: random iptables-shaped IR rulesets and packet scenarios that hit them.

Everything is drawn from one small address/port universe that matches the kernel harness's
plan, so rules and packets meet often (hits and near misses), and shrinking ends at readable
examples.  Rulesets stay inside what `emit_iptables` accepts (one action per rule, REJECT only in
filter, notrack only in raw, NAT only in nat chains of the right hook...), so every backend can
take them; `ruleset_ok_for_kernel_sim` tells when the simulator can be compared with the kernel.

Roles of addresses never change: a "local" address is always a destination of `in` / a source
of `out` (the harness makes it local), a "remote" one always sits behind the interface its
route says (eth0: 198.51.100.0/24 and on-link 192.0.2.0/24, eth1: 203.0.113.0/24).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Optional

from hypothesis import strategies as st

from fwc import ir
from fwc.packet import Case, cases_from_json

IFACES = ("eth0", "eth1")
LOCAL = {4: ("192.0.2.1", "192.0.2.100"), 6: ("2001:db8:f::1", "2001:db8:f::100")}
REMOTE = {
    4: {"eth0": ("198.51.100.7", "198.51.100.130", "192.0.2.77"),
        "eth1": ("203.0.113.9", "203.0.113.200")},
    6: {"eth0": ("2001:db8:a::7", "2001:db8:a:0:8000::7"),
        "eth1": ("2001:db8:b::9", "2001:db8:b:0:8000::9")},
}
_N = ipaddress.ip_network
_A = ipaddress.ip_address
RULE_ADDRS = {
    4: tuple(_N(n) for n in (
        "198.51.100.0/24", "198.51.100.0/25", "198.51.100.128/25", "198.51.100.7/32",
        "203.0.113.0/24", "203.0.113.128/25", "192.0.2.0/24", "192.0.2.1/32", "192.0.2.100/32",
        "10.0.0.0/8")) + (
        ir.AddrRange(_A("198.51.100.1"), _A("198.51.100.100")),
        ir.AddrRange(_A("203.0.113.100"), _A("203.0.113.255")),
        ir.AddrRange(_A("192.0.2.1"), _A("192.0.2.99"))),
    6: tuple(_N(n) for n in (
        "2001:db8:a::/64", "2001:db8:a::/65", "2001:db8:a::7/128", "2001:db8:b::/64",
        "2001:db8:b:0:8000::/65", "2001:db8:f::/64", "2001:db8:f::1/128", "2001:db8::/32",
        "2001:db8:ffff::/48")) + (
        ir.AddrRange(_A("2001:db8:a::1"), _A("2001:db8:a::ff")),
        ir.AddrRange(_A("2001:db8:b::1"), _A("2001:db8:b:0:ffff::"))),
}
RULE_PORTS = (ir.Range.one(22), ir.Range.one(53), ir.Range.one(80), ir.Range.one(443),
              ir.Range.one(8080), ir.Range(1024, 65535), ir.Range(1, 1023), ir.Range(80, 443))
PACKET_DPORTS = (22, 53, 80, 443, 8080, 3000)
PACKET_SPORTS = (40000, 53, 1023, 22, 50001)
ICMP_TYPES = {4: ((8, None), (0, None), (3, 3), (3, None), (11, None)),
              6: ((128, None), (129, None), (1, 4), (1, None), (3, None))}
REJECT_WITH = {"ip": (None, "port-unreachable", "host-unreachable", "admin-prohibited",
                      "net-unreachable"),
               "ip6": (None, "port-unreachable", "admin-prohibited", "no-route", "addr-unreachable")}
USER_CHAIN_NAMES = ("u0", "web", "log", "fw-in", "LOG_DROP", "counter", "chain_2", "Ssh")
PROTO_NUM = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
# hooks a probe of each direction passes
PATHS = {"in": ("prerouting", "input"), "out": ("output", "postrouting"),
         "fwd": ("prerouting", "forward", "postrouting")}
NAT_VERDICTS = (ir.Snat, ir.Dnat, ir.Masquerade, ir.Redirect, ir.Netmap)


def budget(ci: int, long: int) -> int:
    """Examples for a property: `ci` in the default/ci profile, `long` with FWC_HYPOTHESIS_PROFILE=long."""
    return long if os.environ.get("FWC_HYPOTHESIS_PROFILE") == "long" else ci


def _weighted(*pairs):
    """sampled_from with integer weights: _weighted((a, 3), (b, 1))."""
    return st.sampled_from([v for v, w in pairs for _ in range(w)])


# ----------------------------------------------------------------------------- matches

MODULE_KINDS = ("ctstate", "ctstate", "ctstatus", "ctdir", "ctproto", "ctexpire", "ctaddr",
                "mark", "connmark", "length", "ttl", "dscp", "limit", "hashlimit",
                "statistic", "frag", "pkttype")
# conntrack timeouts (tcp 120/60/10/432000, udp 30/120, icmp 30) count down in the kernel while
# the simulator reads them whole: expiration ranges keep away from them
CT_EXPIRE_RANGES = (ir.Range(0, 999), ir.Range(0, 5999), ir.Range(200000, 1000999),
                    ir.Range(1000000, 500000999))  # (ms, whole seconds as --ctexpire says)


@st.composite
def _addresses(draw, fam: str) -> list:
    out = []
    l3 = 4 if fam == "ip" else 6
    for field in ("saddr", "daddr"):
        if draw(_weighted((False, 3), (True, 1))):
            out.append(ir.Address(field, (draw(st.sampled_from(RULE_ADDRS[l3])),),
                                  draw(_weighted((False, 3), (True, 1)))))
    return out


def _ranges(draw) -> tuple:
    n = draw(_weighted((1, 4), (2, 1), (3, 1)))
    return tuple(draw(st.lists(st.sampled_from(RULE_PORTS), min_size=n, max_size=n, unique=True)))


@st.composite
def _l4(draw, fam: str, terminal: bool):
    """(Proto or None, [protocol-dependent matches], focus protocol name or None)."""
    icmp = "icmp" if fam == "ip" else "icmpv6"
    focus = draw(_weighted((None, 3), ("tcp", 3), ("udp", 2), (icmp, 2), ("neg", 1)))
    if focus is None:
        return None, [], None
    if focus == "neg":
        p = draw(st.sampled_from(("tcp", "udp", icmp)))
        return ir.Proto(frozenset({PROTO_NUM[p]}), negate=True), [], None
    proto = ir.Proto(frozenset({PROTO_NUM[focus]}))
    extra = []
    if focus in ("tcp", "udp"):
        for field in draw(st.sampled_from(((), ("dport",), ("sport",), ("sport", "dport"),
                                             ("port",) if terminal else ("dport",)))):
            extra.append(ir.Port(focus, field, _ranges(draw), draw(_weighted((False, 3), (True, 1)))))
        if focus == "tcp" and draw(_weighted((False, 2), (True, 1))):
            mask = draw(st.sets(st.sampled_from(("SYN", "ACK", "FIN", "RST")), min_size=1))
            comp = draw(st.sets(st.sampled_from(sorted(mask))))
            extra.append(ir.TcpFlags(frozenset(mask), frozenset(comp),
                                     draw(_weighted((False, 3), (True, 1)))))
    elif draw(_weighted((False, 1), (True, 2))):
        t, code = draw(st.sampled_from(ICMP_TYPES[4 if fam == "ip" else 6]))
        codes = ir.Range(0, 255) if code is None else ir.Range.one(code)
        extra.append(ir.Icmp(fam, t, codes, draw(_weighted((False, 3), (True, 1)))))
    return proto, extra, focus


def _interfaces(draw, hook: str) -> list:
    out = []
    for field, hooks in (("iifname", ("prerouting", "input", "forward")),
                         ("oifname", ("forward", "output", "postrouting"))):
        if hook in hooks and draw(_weighted((False, 3), (True, 1))):
            name = draw(_weighted(("eth0", 3), ("eth1", 3), ("eth+", 1), ("ppp+", 1)))
            out.append(ir.Interface(field, name, draw(_weighted((False, 3), (True, 1)))))
    return out


@st.composite
def _module_matches(draw, fam: str, exclude: frozenset = frozenset()) -> list:
    """Matches that any hook and table accept (conntrack, marks, lengths...)."""
    kinds = [k for k in MODULE_KINDS if k not in exclude]
    n = draw(_weighted((0, 3), (1, 3), (2, 1))) if kinds else 0
    pool = draw(st.lists(st.sampled_from(kinds), min_size=n, max_size=n, unique=True))
    neg = _weighted((False, 3), (True, 1))
    out = []
    for kind in pool:
        if kind == "ctstate":
            states = draw(st.sets(st.sampled_from(ir.CT_STATES), min_size=1, max_size=3))
            out.append(ir.CtState(frozenset(states), draw(neg)))
        elif kind == "ctstatus":
            bits = draw(st.sets(st.sampled_from(("SEEN_REPLY", "ASSURED", "CONFIRMED", "EXPECTED")),
                                min_size=1, max_size=2))
            out.append(ir.CtStatus(frozenset(bits), draw(neg)))
        elif kind == "ctdir":
            out.append(ir.CtDirection(draw(st.sampled_from(("ORIGINAL", "REPLY"))), draw(neg)))
        elif kind == "ctproto":
            out.append(ir.CtProto(draw(st.sampled_from((6, 17, 1 if fam == "ip" else 58))), draw(neg)))
        elif kind == "ctexpire":
            out.append(ir.CtExpire(draw(st.sampled_from(CT_EXPIRE_RANGES)), draw(neg)))
        elif kind == "ctaddr":
            nets = [a for a in RULE_ADDRS[4 if fam == "ip" else 6] if not isinstance(a, ir.AddrRange)]
            out.append(ir.CtAddress(draw(st.sampled_from(("original", "reply"))),
                                    draw(st.sampled_from(("saddr", "daddr"))),
                                    (draw(st.sampled_from(nets)),), draw(neg)))
        elif kind == "pkttype":
            out.append(ir.PktType(draw(st.sampled_from(("unicast", "broadcast", "multicast"))),
                                  draw(neg)))
        elif kind in ("mark", "connmark"):
            value, mask = draw(st.sampled_from(((0, 0xFFFFFFFF), (1, 0xFFFFFFFF), (2, 0xFFFFFFFF),
                                                (0x10, 0xF0), (1, 0xFF), (0, 0x1))))
            out.append(ir.Mark("meta" if kind == "mark" else "ct", value, mask, draw(neg)))
        elif kind == "length":
            lo = draw(st.sampled_from((0, 28, 40, 41, 48, 60, 100) if fam == "ip" else
                                      (40, 48, 60, 61, 68, 80, 100)))
            hi = draw(st.sampled_from((lo, lo + 8, lo + 20, 1500, 65535)))
            out.append(ir.Length(ir.Range(lo, hi), draw(neg)))
        elif kind == "ttl":
            out.append(ir.Ttl(fam, draw(st.sampled_from(("eq", "ne", "lt", "gt"))),
                              draw(st.sampled_from((1, 63, 64, 65, 255)))))
        elif kind == "dscp":
            out.append(ir.Dscp(draw(st.sampled_from((0, 0x0A, 0x2E))), draw(neg)))
        elif kind == "limit":
            # generous enough that no run of one ruleset exhausts it: then it is deterministic
            # (never negated: xt_limit cannot be inverted)
            out.append(ir.Limit(10000, "second", 10000))
        elif kind == "hashlimit":
            # generous as limit; the key fields and masks still have to be written and read (no
            # port fields: nft needs the rule to name one protocol for those)
            mode = draw(st.sampled_from(((), ("srcip",), ("dstip",), ("srcip", "dstip"))))
            srcmask = draw(st.sampled_from((None, 24 if fam == "ip" else 64))) \
                if "srcip" in mode else None
            # one name per key: rules naming one table must agree on its key (nft refuses that)
            name = "h" + "".join(m[:3] for m in mode) + (str(srcmask) if srcmask else "")
            out.append(ir.HashLimit(name, 10000, "second", 10000, mode, srcmask=srcmask,
                                    expire_ms=10000))
        elif kind == "statistic":
            # only the certain draws (probability 0 or 1) are deterministic; nth counters
            # live in the kernel's rule and outlast a case
            out.append(ir.Statistic("random", draw(st.sampled_from((0.0, 1.0))), negate=draw(neg)))
        elif kind == "frag" and fam == "ip":
            out.append(ir.Fragment(draw(neg)))
    return out


# ----------------------------------------------------------------------------- actions


def _nat_target(draw, fam: str, kind: str, ports_ok: bool) -> ir.NatTarget:
    if kind == "snat":
        addr = {"ip": ("192.0.2.1/32", "192.0.2.100/32"), "ip6": ("2001:db8:f::1/128",)}[fam]
    else:
        addr = {"ip": ("203.0.113.50/32", "198.51.100.50/32"), "ip6": ("2001:db8:b::50/128",)}[fam]
    a = _N(draw(st.sampled_from(addr)))
    ports = draw(st.sampled_from((None, ir.Range.one(8080), ir.Range(2000, 2010)))) if ports_ok else None
    return ir.NatTarget(a, ports)


@st.composite
def _action(draw, fam: str, table: str, hook: str, focus: Optional[str], targets: tuple,
            can_return: bool):
    """(statements, verdict) for one rule: iptables allows one action per rule."""
    ports_ok = focus in ("tcp", "udp")
    choices = [("accept", 4), ("none", 1)]
    if table != "nat":
        choices.append(("drop", 4))
    if targets:
        choices += [("jump", 3), ("goto", 1)]
    if can_return:
        choices.append(("return", 1))
    if table == "filter":
        choices += [("reject", 3), ("log", 1), ("setmark", 1)]
    if table == "mangle":
        choices += [("setmark", 3), ("connmark", 1), ("savemark", 1), ("log", 1), ("ttl", 1),
                    ("dscp", 1)]
    if table == "raw":
        choices += [("notrack", 3)]
    if table == "nat":
        if hook in ("prerouting", "output"):
            choices += [("dnat", 3)] + ([("redirect", 1)] if ports_ok else [])
        else:
            choices += [("snat", 3)] + ([("masquerade", 1)] if hook == "postrouting" else [])
    kind = draw(_weighted(*choices))
    if kind == "accept":
        return (), ir.Accept()
    if kind == "drop":
        return (), ir.Drop()
    if kind == "none":
        return (), None
    if kind == "return":
        return (), ir.Return()
    if kind in ("jump", "goto"):
        target = draw(st.sampled_from(targets))
        return (), (ir.Jump(target) if kind == "jump" else ir.Goto(target))
    if kind == "reject":
        options = REJECT_WITH[fam] + (("tcp-reset",) if focus == "tcp" else ())
        return (), ir.Reject(draw(st.sampled_from(options)))
    if kind == "log":
        prefix = draw(st.sampled_from((None, "fwc ", "drop: ", "x")))
        level = draw(st.sampled_from((None, 0, 6, 7)))
        return (ir.Log(prefix, level),), None
    if kind in ("setmark", "connmark"):
        value, mask = draw(st.sampled_from(((1, 0xFFFFFFFF), (2, 0xFFFFFFFF), (0x10, 0xF0),
                                            (0, 0xFFFFFFFF), (1, 0x1))))
        # CONNMARK --left/--right-shift-mark
        shift = draw(_weighted((0, 6), (4, 1), (-1, 1))) if kind == "connmark" else 0
        return (ir.SetMark("meta" if kind == "setmark" else "ct", value, mask, shift),), None
    if kind == "ttl":
        # values that keep a forwarded packet alive (ttl 1 would expire in the forward path)
        # (only set: nft cannot add to or subtract from a header field)
        op, value = draw(st.sampled_from((("set", 64), ("set", 5), ("set", 65))))
        return (ir.SetTtl(fam, op, value),), None
    if kind == "dscp":
        return (ir.SetDscp(draw(st.sampled_from((0, 0x0A, 0x2E)))),), None
    if kind == "savemark":
        return (ir.CopyMark(draw(st.sampled_from(("ct", "meta"))),
                            shift=draw(_weighted((0, 6), (8, 1), (-2, 1)))),), None
    if kind == "notrack":
        return (ir.Notrack(),), None
    if kind == "dnat":
        return (), ir.Dnat((_nat_target(draw, fam, "dnat", ports_ok),))
    if kind == "snat":
        return (), ir.Snat((_nat_target(draw, fam, "snat", ports_ok),))
    if kind == "redirect":
        return (), ir.Redirect(draw(st.sampled_from((None, ir.Range.one(8080)))))
    if kind == "masquerade":
        return (), ir.Masquerade(draw(st.sampled_from((None, ir.Range(2000, 2010)))) if ports_ok else None)
    raise AssertionError(kind)


COMMENTS = st.one_of(st.none(), st.none(), st.none(),
                     st.sampled_from(("ssh", "allow web", "a-b_c.d", "x:y/z", "100%", "é")))


@st.composite
def rule_for(draw, fam: str, table: str, hook: str, targets: tuple = (), can_return: bool = True,
             exclude: frozenset = frozenset()):
    """One rule valid in chain context (family, iptables table, hook)."""
    # whether the verdict ends evaluation matters for multiport --ports (nft splits it in two)
    statements, verdict = draw(_action(fam, table, hook, None, targets, can_return))
    terminal = verdict is not None and not isinstance(verdict, ir.Jump) and not statements
    proto, l4, focus = draw(_l4(fam, terminal))
    # actions that depend on the protocol are drawn again now that it is known
    if focus in ("tcp", "udp") and draw(_weighted((False, 3), (True, 1))):
        statements, verdict = draw(_action(fam, table, hook, focus, targets, can_return))
        if not (verdict is not None and not isinstance(verdict, ir.Jump) and not statements):
            l4 = [m for m in l4 if not (isinstance(m, ir.Port) and m.field == "port")]
    interfaces = _interfaces(draw, hook)
    addrs = draw(_addresses(fam))
    nets = [a for a in addrs if not isinstance(a.values[0], ir.AddrRange)]
    ranges = [a for a in addrs if isinstance(a.values[0], ir.AddrRange)]
    module = draw(_module_matches(fam, exclude))
    if hook in ("output", "postrouting") and "owner" not in exclude and \
            draw(_weighted((False, 5), (True, 1))):
        # the harness sends as root; negated owner matches take a chain of their own in nft,
        # where -j RETURN / -g would be refused (they are tested in test_socket_kernel.py)
        cls = draw(st.sampled_from((ir.SkUid, ir.SkGid)))
        module.append(cls(ir.Range.one(draw(st.sampled_from((0, 1000))))))
    if "connlabel" not in exclude and draw(_weighted((False, 8), (True, 1))):
        # a negated one takes a chain of its own in nft, where -j RETURN / -g are refused
        negatable = not isinstance(verdict, (ir.Return, ir.Goto))
        cls = draw(st.sampled_from((ir.ConnLabel, ir.ConnLabelSet)))
        module.append(cls(draw(st.sampled_from((0, 5, 127))),
                          negatable and draw(_weighted((False, 2), (True, 1)))))
    if "cluster" not in exclude and hook != "input" and \
            not isinstance(verdict, (ir.Return, ir.Goto)) and draw(_weighted((False, 10), (True, 1))):
        # nft says only a mask naming every node, and its pkt_type rewrite not in input; a
        # stateful match before it takes a chain of its own, where RETURN / -g are refused
        n = draw(st.sampled_from((1, 2, 5)))
        module.append(ir.Cluster(n, (1 << n) - 1, draw(st.sampled_from((0, 0xDEADBEEF))),
                                 draw(_weighted((False, 3), (True, 1)))))
    if any(isinstance(m, ir.Port) and m.field == "port" for m in l4):
        # nft writes --ports as two rules; a limit or a label set would then run twice (refused)
        module = [m for m in module if not isinstance(m, (ir.Limit, ir.ConnLabelSet,
                                                          ir.Cluster))]
    # canonical order = the order the iptables front end reads back: core options first
    # (-i/-o, -f, -p, -s/-d), then modules
    frag = [m for m in module if isinstance(m, ir.Fragment)]
    module = [m for m in module if not isinstance(m, ir.Fragment)]
    matches = interfaces + frag + ([proto] if proto is not None else []) + nets + ranges + l4 + module
    return ir.Rule(tuple(matches), tuple(statements), verdict, draw(COMMENTS))


@st.composite
def table_for(draw, fam: str, table: str, max_rules: int = 4, exclude: frozenset = frozenset()):
    """One iptables table: all its built-in chains, plus user chains each homed to one base chain
    (jumps only go to user chains of the same home with a higher index: no loops)."""
    bases = ir.TABLE_CHAINS[table]
    n_user = draw(_weighted((0, 2), (1, 3), (2, 2), (3, 1)))
    names = draw(st.lists(st.sampled_from(USER_CHAIN_NAMES), min_size=n_user, max_size=n_user,
                          unique=True))
    home = {n: draw(st.sampled_from(bases)) for n in names}
    user_chains = []
    for i, name in enumerate(names):
        hook = home[name].lower()
        later = tuple(n for n in names[i + 1:] if home[n] == home[name])
        rules = draw(st.lists(rule_for(fam, table, hook, later, True, exclude), max_size=max_rules))
        user_chains.append(ir.Chain(name, tuple(rules)))
    base_chains = []
    for chain in bases:
        hook = chain.lower()
        mine = tuple(n for n in names if home[n] == chain)
        rules = draw(st.lists(rule_for(fam, table, hook, mine, True, exclude), max_size=max_rules))
        policy = "accept" if table == "nat" else draw(_weighted(("accept", 2), ("drop", 1)))
        base_chains.append(ir.Chain(chain, tuple(rules), ir.iptables_base_hook(table, chain, policy)))
    return ir.Table(fam, table, tuple(base_chains + user_chains))


@st.composite
def rulesets(draw, families=("ip", "ip6"), nat: bool = True, max_rules: int = 4,
             exclude=frozenset()):
    """A ruleset of iptables tables (filter always, nat/mangle/raw sometimes) for 1-2 families.
    `exclude`: MODULE_KINDS left out (to look past a known gap while exploring)."""
    exclude = frozenset(exclude)
    fams = draw(st.sampled_from([(f,) for f in families] + ([tuple(families)] if len(families) > 1 else [])))
    tables = []
    for fam in fams:
        extra = ["mangle", "raw"] + (["nat"] if nat else [])
        chosen = ["filter"] + [t for t in extra if draw(_weighted((False, 2), (True, 1)))]
        for t in ("filter", "nat", "mangle", "raw"):
            if t in chosen:
                tables.append(draw(table_for(fam, t, max_rules, exclude)))
    return ir.Ruleset(tuple(tables))


def has_nat(rs: ir.Ruleset) -> bool:
    return any(isinstance(r.verdict, NAT_VERDICTS) for t in rs.tables for c in t.chains for r in c.rules)


def ruleset_ok_for_kernel_sim(rs: ir.Ruleset) -> bool:
    """The harness sees an accepted packet only if it leaves unchanged: NATed packets read DROP
    there, so the simulator is compared with the kernel only for rulesets without NAT."""
    return not has_nat(rs)


# ----------------------------------------------------------------------------- packets


def _route(addr: str) -> str:
    a = _A(addr)
    for iface, addrs in REMOTE[a.version].items():
        if addr in addrs:
            return iface
    return "eth0"


def mentioned_ports(rs: ir.Ruleset) -> list[int]:
    """Ports the rules mention and their neighbours: packets biased to hit the rules."""
    out = set()
    for t in rs.tables:
        for c in t.chains:
            for r in c.rules:
                for m in r.matches:
                    if isinstance(m, ir.Port):
                        for rg in m.ranges:
                            out.update(p for p in (rg.lo, rg.hi, rg.lo - 1, rg.hi + 1) if 0 < p < 65536)
    return sorted(out)


def ruleset_families(rs: ir.Ruleset) -> tuple[int, ...]:
    fams = {4 if t.family == "ip" else 6 for t in rs.tables if t.family in ("ip", "ip6")}
    return tuple(sorted(fams)) or (4,)


@st.composite
def case_dict(draw, l3s=(4, 6), ports=()):
    """One case in the JSON form of fwc/packet.py: a probe and the setup that gives it its state."""
    l3 = draw(st.sampled_from(l3s))
    d = draw(_weighted(("in", 3), ("out", 2), ("fwd", 3)))
    remote = [a for iface in IFACES for a in REMOTE[l3][iface]]
    if d == "in":
        src = draw(st.sampled_from(remote))
        probe = {"dir": "in", "src": src, "dst": draw(st.sampled_from(LOCAL[l3])), "iif": _route(src)}
    elif d == "out":
        dst = draw(st.sampled_from(remote))
        probe = {"dir": "out", "src": draw(st.sampled_from(LOCAL[l3])), "dst": dst, "oif": _route(dst)}
    else:
        src = draw(st.sampled_from(remote))
        others = [a for a in remote if _route(a) != _route(src)]
        dst = draw(st.sampled_from(others))
        probe = {"dir": "fwd", "src": src, "dst": dst, "iif": _route(src), "oif": _route(dst)}
    kind = draw(_weighted(("new", 4), ("established", 3), ("midstream", 1), ("related", 1)))
    icmp = "icmp" if l3 == 4 else "icmpv6"
    proto = draw(_weighted(("tcp", 4), ("udp", 3), (icmp, 2)))
    dports = sorted(set(PACKET_DPORTS) | set(ports))
    if proto in ("tcp", "udp"):
        probe.update(proto=proto, sport=draw(st.sampled_from(PACKET_SPORTS + tuple(ports))),
                     dport=draw(st.sampled_from(dports)))
    else:
        types = [t for t, _ in ICMP_TYPES[l3]]
        t = draw(st.sampled_from(types))
        probe.update(proto=icmp, icmp_type=t, icmp_id=draw(st.sampled_from((1, 7, 4242))))
        if t in (3, 1):
            probe["icmp_code"] = draw(st.sampled_from((0, 3, 4)))
    if proto == "tcp":
        probe["flags"] = draw(_weighted(("S", 6), ("SA", 1), ("A", 1), ("PA", 1), ("FA", 1),
                                        ("R", 1), ("", 1), ("SF", 1)))
    if draw(_weighted((False, 4), (True, 1))):
        probe["payload"] = "x" * draw(st.sampled_from((1, 8, 20)))
    setup: list = []
    echo_req = 8 if l3 == 4 else 128
    if kind == "established":
        opener = _reverse(probe)
        if proto == "tcp":
            opener["flags"], probe["flags"] = "S", "SA"
        elif proto == icmp:
            opener.update(icmp_type=echo_req, icmp_code=0)
            probe.update(icmp_type=echo_req - 8 if l3 == 4 else 129, icmp_code=0)
        opener.pop("payload", None)
        setup = [opener]
    elif kind == "midstream" and proto == "tcp":
        syn = dict(probe, flags="S")
        syn.pop("payload", None)
        setup = [syn, dict(_reverse(syn), flags="SA")]
        probe["flags"] = draw(st.sampled_from(("A", "PA", "FA", "R")))
    elif kind == "related":
        opener = _reverse(probe)
        opener["proto"] = "tcp" if proto == "tcp" else "udp"
        for k in ("icmp_type", "icmp_id", "icmp_code", "payload"):
            opener.pop(k, None)
        opener.setdefault("sport", draw(st.sampled_from(PACKET_SPORTS)))
        opener.setdefault("dport", draw(st.sampled_from(dports)))
        opener["flags"] = "S"
        if opener["proto"] == "udp":
            opener.pop("flags")
        for k in ("sport", "dport", "flags", "payload", "icmp_id"):
            probe.pop(k, None)
        probe.update(proto=icmp, icmp_type=3 if l3 == 4 else 1,
                     icmp_code=draw(st.sampled_from((3, 1) if l3 == 4 else (4, 3))), quote=0)
        setup = [opener]
    return {"setup": setup, "probe": probe}


def _reverse(p: dict) -> dict:
    """The packet the other end sends first, so that `p` is its reply."""
    r = {k: v for k, v in p.items() if k not in ("iif", "oif", "quote")}
    r["src"], r["dst"] = p["dst"], p["src"]
    if "sport" in p:
        r["sport"], r["dport"] = p["dport"], p["sport"]
    d = p["dir"]
    r["dir"] = {"in": "out", "out": "in", "fwd": "fwd"}[d]
    if d == "in":
        r["oif"] = p["iif"]
    elif d == "out":
        r["iif"] = p["oif"]
    else:
        r["iif"], r["oif"] = p["oif"], p["iif"]
    return r


@st.composite
def scenarios(draw, rs: Optional[ir.Ruleset] = None, n: int = 20):
    """`n` cases (list[Case]) for ruleset `rs`: its families, its ports and their neighbours."""
    l3s = ruleset_families(rs) if rs is not None else (4, 6)
    ports = tuple(mentioned_ports(rs)) if rs is not None else ()
    dicts = draw(st.lists(case_dict(l3s, ports), min_size=n, max_size=n))
    for i, c in enumerate(dicts):
        c["name"] = f"c{i}"
    return cases_from_json(dicts, "scenario")


def universe_cases() -> list[Case]:
    """One case per address of the universe, for KernelHarness.prepare(): every local address is
    local and every on-link remote has a neighbour before any generated case runs."""
    dicts = []
    for l3 in (4, 6):
        for iface in IFACES:
            for src in REMOTE[l3][iface]:
                for dst in LOCAL[l3]:
                    dicts.append({"probe": {"dir": "in", "src": src, "dst": dst, "iif": iface}})
                    dicts.append({"probe": {"dir": "out", "src": dst, "dst": src, "oif": iface}})
                for other in IFACES:
                    if other != iface:
                        for dst in REMOTE[l3][other]:
                            dicts.append({"probe": {"dir": "fwd", "src": src, "dst": dst,
                                                    "iif": iface, "oif": other}})
    return cases_from_json(dicts, "universe")


# ----------------------------------------------------------------------------- differential legs


def outcome(r) -> tuple:
    """What must agree between two runs of a case: verdicts (setup packets too) and ct state."""
    return (r.verdict, r.ct_state, tuple(r.setup_verdicts))


def iptables_leg(rs: ir.Ruleset) -> ir.Ruleset:
    """rs written by the iptables backend and read back by the iptables front end."""
    from fwc.backends.iptables import emit_iptables
    from fwc.frontends.iptables import parse_iptables_save

    texts = emit_iptables(rs)
    tables = []
    for fam in ("ip", "ip6"):
        if fam in texts:
            tables += parse_iptables_save(texts[fam], f"<emit_iptables {fam}>", fam).tables
    return ir.Ruleset(tuple(tables))


def nft_leg(rs: ir.Ruleset) -> ir.Ruleset:
    """rs written by the nft backend and read back by the nft front end."""
    from fwc.backends.nft import emit_nft
    from fwc.frontends.nft import parse_nft

    return parse_nft(emit_nft(rs), "<emit_nft>")


def disagreements(results: dict, cases: list[Case]) -> list[str]:
    """One line per case on which some leg differs from the first leg of `results`."""
    names = list(results)
    ref = names[0]
    lines = []
    for i, case in enumerate(cases):
        want = outcome(results[ref][i])
        odd = {n: outcome(results[n][i]) for n in names[1:] if outcome(results[n][i]) != want}
        if odd:
            lines.append(f"{case.name}: {ref}={want} " + " ".join(f"{n}={v}" for n, v in odd.items())
                         + f"\n    {case_json(case)}")
    return lines


def case_json(case: Case) -> dict:
    """A case back in its JSON form (for reports and regression tests)."""
    def pkt(p):
        d = {"dir": p.dir, "src": str(p.src), "dst": str(p.dst), "proto": p.proto}
        for k in ("sport", "dport", "icmp_type", "quote", "iif", "oif"):
            if getattr(p, k) is not None:
                d[k] = getattr(p, k)
        if p.proto == 6:
            d["flags"] = "".join(l for l, n in (("S", "SYN"), ("A", "ACK"), ("F", "FIN"), ("R", "RST"),
                                                ("P", "PSH"), ("U", "URG"), ("E", "ECE"), ("C", "CWR"))
                                 if n in p.flags)
        if p.is_icmp:
            d["icmp_code"], d["icmp_id"] = p.icmp_code, p.icmp_id
        if p.payload:
            d["payload"] = p.payload.decode("latin-1")
        return d
    return {"name": case.name, "setup": [pkt(p) for p in case.setup], "probe": pkt(case.probe)}


def report(rs: ir.Ruleset, lines: list[str], limit: int = 8) -> str:
    """A failure message with the iptables-restore text of the ruleset, enough to reproduce."""
    from fwc.backends.iptables import emit_iptables

    texts = emit_iptables(rs)
    body = "\n".join(f"# {fam}\n{text}" for fam, text in texts.items())
    return f"{len(lines)} case(s) disagree:\n" + "\n".join(lines[:limit]) + "\nruleset:\n" + body


def differential(rs: ir.Ruleset, cases: list[Case], harness=None) -> tuple[dict, list[str]]:
    """Run `cases` through every leg and return ({leg: results}, disagreement lines).

    Legs: the simulator on the IR, on both round trips (iptables, nft) and on the optimised IR
    (every pass); with a KernelHarness also the kernel running emit_iptables(rs), emit_nft(rs)
    and emit_nft of the optimised IR.  The kernel legs are compared
    with each other always, and with the simulator when the ruleset has no NAT (see
    ruleset_ok_for_kernel_sim)."""
    from fwc.backends.simulate import simulate
    from fwc.testing.kernel import sim_options

    opts = sim_options()  # the simulator runs the harness's host (addresses, default route)
    optimised = optimised_leg(rs)
    sim = {"sim-ir": _simulated(rs, cases, opts), "sim-iptables": _simulated(iptables_leg(rs), cases, opts),
           "sim-nft": _simulated(nft_leg(rs), cases, opts), "sim-O": _simulated(optimised, cases, opts)}
    if harness is None:
        return sim, disagreements(sim, cases)
    kern = kernel_results(rs, cases, harness, optimised)
    if ruleset_ok_for_kernel_sim(rs):
        both = {**kern, **sim}
        return both, disagreements(both, cases)
    return {**kern, **sim}, disagreements(kern, cases) + disagreements(sim, cases)


class _Refused:
    """A case the simulator refuses because it may be the reply to a connection whose NAT port
    the kernel picks at random; every simulator leg must refuse it alike."""

    verdict = ct_state = "refused: random NAT port"
    setup_verdicts = ()


def _simulated(rs: ir.Ruleset, cases: list[Case], opts) -> list:
    from fwc.backends.simulate import Simulator
    from fwc.conntrack.table import RandomPortUnknown

    sim = Simulator(rs, opts)
    out = []
    for c in cases:
        try:
            out.append(sim.run_case(c))
        except RandomPortUnknown:
            out.append(_Refused())
    return out


def kernel_results(rs: ir.Ruleset, cases: list[Case], harness,
                   optimised: Optional[ir.Ruleset] = None) -> dict:
    """{"kernel-iptables": results, "kernel-nft": results[, "kernel-nft-O": results]}: the
    kernel running both backends' output of `rs` (iptables-restore / ip6tables-restore, then
    nft -f) in `harness`, and the nft output of the optimised ruleset when given (when -O
    writes the very same text, its results are the plain nft ones)."""
    from fwc.backends.iptables import emit_iptables
    from fwc.backends.nft import emit_nft

    harness.prepare(universe_cases())
    harness.prepare(cases)
    texts = emit_iptables(rs)
    harness.load_iptables(texts.get("ip"), texts.get("ip6"))
    out = {"kernel-iptables": harness.run_cases(cases)}
    plain = emit_nft(rs)
    harness.load_nft(plain)
    out["kernel-nft"] = harness.run_cases(cases)
    if optimised is not None:
        text = emit_nft(optimised)
        if text == plain:
            out["kernel-nft-O"] = out["kernel-nft"]
        else:
            harness.load_nft(text)
            out["kernel-nft-O"] = harness.run_cases(cases)
    return out


def optimised_leg(rs: ir.Ruleset) -> ir.Ruleset:
    """rs through every optimiser pass (`fwc translate -O`)."""
    from fwc.passes import optimize

    return optimize(rs, target="nft")
