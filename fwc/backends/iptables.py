"""iptables-restore backend: IR -> iptables-restore / ip6tables-restore text.

Base chains are mapped back onto iptables' tables by (type, hook, priority); anything iptables
cannot express exactly raises `Unsupported` with the rule's location.
"""

from __future__ import annotations

import ipaddress
import zlib
from typing import Optional

import attrs

from fwc import ir
from fwc.backends import iptables_tail as tail
from fwc.backends.iptables_lower import Exits, Split, describe, lower_rule
from fwc.backends.nft_helpers import merge_helper_replays
from fwc.errors import ErrorGroup, FwcError, Unsupported

_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp", 33: "dccp",
                136: "udplite", 47: "gre", 50: "esp", 51: "ah"}
_PROTO_NUM = {"tcp": 6, "udp": 17, "sctp": 132, "dccp": 33, "udplite": 136}
_REJECT_V4 = {"net-unreachable": "icmp-net-unreachable", "host-unreachable": "icmp-host-unreachable",
              "port-unreachable": "icmp-port-unreachable", "prot-unreachable": "icmp-proto-unreachable",
              "net-prohibited": "icmp-net-prohibited", "host-prohibited": "icmp-host-prohibited",
              "admin-prohibited": "icmp-admin-prohibited", "tcp-reset": "tcp-reset"}
_REJECT_V6 = {"no-route": "icmp6-no-route", "admin-prohibited": "icmp6-adm-prohibited",
              "addr-unreachable": "icmp6-addr-unreachable", "port-unreachable": "icmp6-port-unreachable",
              "policy-fail": "icmp6-policy-fail", "reject-route": "icmp6-reject-route",
              "tcp-reset": "tcp-reset"}
_LOG_FLAGS = {"tcp-sequence": "--log-tcp-sequence", "tcp-options": "--log-tcp-options",
              "ip-options": "--log-ip-options", "uid": "--log-uid", "macdecode": "--log-macdecode"}
_TABLE_BY_PRIO = {-300: "raw", -150: "mangle", 0: "filter", 50: "security"}


_L2_SEES = {"bridge": "frames crossing a bridge", "netdev": "frames at a device",
            "arp": "ARP packets, as arptables does"}


def quote(s: str) -> str:
    """Quote like iptables-save does: only when needed, with backslash escapes.  A control
    character cannot be written: a newline would end the rule line (and start another one),
    a NUL ends what iptables-restore reads of it."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
        raise Unsupported(f"the text {s!r} holds a control character, which an "
                          "iptables-restore line cannot carry", ir.NOLOC)
    if s and all(c.isalnum() or c in "._-:/,+@%=" for c in s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# where the kernel itself acts on a hook (defrag, conntrack, the NAT cores, helpers and
# confirmation): a base chain cannot move across one of these without changing what it sees
_KERNEL_POINTS = {"prerouting": (-400, -200, -100), "output": (-400, -200, -100),
                  "input": (100, 300, 2 ** 31 - 1), "postrouting": (100, 300, 2 ** 31 - 1),
                  "forward": ()}


def _iptables_table(base: ir.BaseHook, others: tuple = ()) -> Optional[str]:
    """The iptables table that runs where `base` does.  A filter or route chain at another
    priority than the table's (`priority filter + 10`, `priority 1`) is that table's when
    nothing lies between the two: no point where the kernel acts on the hook and no other base
    chain of the ruleset on the hook (`others`: their priorities), so every packet meets the
    same chains in the same order, in the same state."""
    if base.type == "nat":
        # any priority: nat chains run inside the NAT core's own hook (-100 prerouting/output,
        # 100 input/postrouting), their priority only orders them among themselves (kernel
        # >= 4.18, nf_nat_register_fn), and one chain per hook maps onto iptables' nat table
        return "nat" if base.hook in ("prerouting", "output", "postrouting", "input") else None
    if base.type == "route":
        tables = ["mangle"] if base.hook == "output" else []
    else:
        tables = [t for t in _TABLE_BY_PRIO.values() if base.hook.upper() in ir.TABLE_CHAINS[t]]
    p = base.priority
    fits = []
    for t in tables:
        q = _PRIO_OF_TABLE[t]
        lo, hi = min(p, q), max(p, q)
        if p == q or not any(lo <= x <= hi for x in (*_KERNEL_POINTS[base.hook], *others)):
            fits.append((abs(p - q), t))
    return min(fits)[1] if fits else None


_PRIO_OF_TABLE = {t: q for q, t in _TABLE_BY_PRIO.items()}


def _hook_neighbours(ruleset: ir.Ruleset) -> dict:
    """Per base chain (id): the priorities of the other base chains on its hook that can see
    the same packets (same family, or inet and ip/ip6), for _iptables_table."""
    bases = [(t.family, c) for t in ruleset.tables for c in t.chains
             if c.base is not None and not c.base.devices]
    # (a nat chain runs in the NAT core, one of _KERNEL_POINTS, whatever its own priority)
    real = [(f, c) for f, c in bases if c.base.type != "nat"]
    def meet(a, b):
        return a == b or "inet" in (a, b)
    return {id(c): tuple(o.base.priority for f2, o in real
                         if o is not c and o.base.hook == c.base.hook and meet(f, f2))
            for f, c in bases}


def emit_iptables(ruleset: ir.Ruleset) -> dict[str, str]:
    """-> {"ip": iptables-restore text, "ip6": ip6tables-restore text} (only families present)."""
    errors: list[FwcError] = []
    # (family, iptables table) -> list of (chain name, policy or None, rules)
    out: dict[tuple[str, str], list] = {}
    placed_names: dict[tuple[str, str], set] = {}  # the chain names in out[key]
    # raw-table `CT --helper` as fwc's nft backend writes it: back to the raw table
    ruleset = ir.Ruleset(tuple(merge_helper_replays(t) for t in ruleset.tables))
    ruleset = _bucket_names(ruleset)
    neighbours = _hook_neighbours(ruleset)
    shared: dict = {}  # inet rules with per-rule state: (rule, families written for)
    for t in ruleset.tables:
        if t.family not in ir.FAMILIES:
            errors.append(Unsupported(
                f"table {t.family} {t.name}: iptables has no {t.family} family (it filters "
                f"{_L2_SEES[t.family]}; iptables-restore writes ip and ip6 tables only)", t.loc))
            continue
        families = ("ip", "ip6") if t.family == "inet" else (t.family,)
        sets = {s.name: s for s in t.sets if isinstance(s, ir.NamedSet)}
        rename: dict[str, str] = {}
        placed: dict[str, str] = {}
        placed_nat = any(c.base is not None and c.base.type == "nat" and not c.base.devices
                         and _iptables_table(c.base) is not None for c in t.chains)
        spare_nat = _spare_nat_chains(t)
        for c in t.chains:
            if c.base is not None:
                table = None if c.base.devices else _iptables_table(
                    c.base, neighbours.get(id(c), ()))
                if table is None and _no_op_base_chain(c, placed_nat) or c.name in spare_nat:
                    continue
                if table is None:
                    errors.append(Unsupported(
                        f"base chain {c.name} (type {c.base.type} hook {c.base.hook} priority "
                        f"{c.base.priority}{' devices ' + ','.join(c.base.devices) if c.base.devices else ''}"
                        ") has no iptables equivalent", c.loc))
                    continue
                rename[c.name] = c.base.hook.upper()
                placed[c.name] = table
        reach = _reaching_tables(t, placed, sets)
        for fam in families:
            for c in t.chains:
                if c.base is not None and c.name not in placed:
                    continue
                table = placed.get(c.name)
                unreached = None
                if c.base is None:
                    tables = reach.get(c.name)
                    if tables is None:  # reached from no base chain at all
                        used = set(placed.values())
                        table = t.name if t.name in ir.TABLE_CHAINS else (
                            next(iter(used)) if len(used) == 1 else None)
                        if table is None and _filter_can_hold(c):
                            # it decides no packet wherever it is: kept, in filter, and said so
                            table = "filter"
                            unreached = (f"# {c.name}: no base chain jumps to it (it decides no "
                                         "packet); kept in the filter table")
                        if table is None:
                            errors.append(Unsupported(
                                f"user chain {c.name}: no base chain jumps to it, so its iptables "
                                "table is unknown", c.loc))
                            continue
                    elif len(tables) > 1:
                        errors.append(Unsupported(
                            f"user chain {c.name} is used from several iptables tables "
                            f"({', '.join(sorted(tables))})", c.loc))
                        continue
                    elif not tables:
                        continue  # only base chains refused above reach it
                    else:
                        table = next(iter(tables))
                key = (fam, table)
                chains = out.setdefault(key, [])
                names = placed_names.setdefault(key, set())  # (a scan per chain: quadratic)
                name = rename.get(c.name, c.name)
                if name in names:
                    errors.append(Unsupported(
                        f"two chains map onto {table} {name} (several nft tables or base chains on "
                        f"one hook have no iptables equivalent)", c.loc))
                    continue
                lines = []
                if unreached:
                    lines.append(unreached)
                aux_chains: list = []
                for i, r in enumerate(c.rules):
                    if i and tail.is_tproxy_fallback(c.rules[i - 1], r):
                        continue  # part of the TPROXY rule before it
                    nxt = c.rules[i + 1] if i + 1 < len(c.rules) else None
                    if isinstance(r.verdict, ir.TProxy) and (
                            nxt is None or not tail.is_tproxy_fallback(r, nxt)):
                        errors.append(Unsupported(
                            "TPROXY that lets packets without a socket go on cannot be expressed "
                            "in iptables (its TPROXY drops them)", r.loc))
                        continue
                    orig, before = r, _written(lines, aux_chains)
                    try:
                        if c.base is not None:
                            _check_iface_direction(r, c.base.hook)
                        acts = _one_action_each(r)
                        ifs = _one_iface_each(r)
                        if ifs is not None and ifs[0] == "same":
                            r, acts = ifs[1], _one_action_each(ifs[1])
                        elif ifs is not None:
                            acts = ifs
                        if acts is not None and acts[0] == "aux":
                            # the matches once, then each action in a chain of its own
                            aux = _aux_name(name, chains, t.chains, aux_chains)
                            jump = ir.Rule(acts[2] if len(acts) > 2 else r.matches, (),
                                           ir.Jump(aux), r.comment, r.loc)
                            low = lower_rule(jump, fam, sets)
                            jumps = len(lines)
                            for piece in low:
                                lines.extend(_rule_lines(piece, name, fam, rename, table))
                            if len(lines) == jumps:
                                continue  # (no packet of this family gets there)
                            aux_chains.append((aux, None, [
                                line for a in acts[1]
                                for line in _rule_lines(a, aux, fam, rename, table)]))
                            continue
                        if acts is not None:  # stateless matches, observing statements
                            for a in acts[1]:
                                for piece in lower_rule(a, fam, sets):
                                    lines.extend(_rule_lines(piece, name, fam, rename, table))
                            continue
                        low = lower_rule(r, fam, sets, allow_split=True)
                        if isinstance(low, Exits):
                            aux = _aux_name(name, chains, t.chains, aux_chains)
                            jumps = len(lines)
                            for head in low.heads:
                                piece = attrs.evolve(head, verdict=ir.Jump(aux))
                                lines.extend(_rule_lines(piece, name, fam, rename, table))
                            if len(lines) == jumps:
                                continue
                            aux_chains.append((aux, None, [
                                line for x in [ir.Rule(e, (), ir.Return(), None, r.loc)
                                               for e in low.exits] + list(low.rest)
                                for line in _rule_lines(x, aux, fam, rename, table)]))
                            continue
                        if isinstance(low, Split):
                            aux = _aux_name(name, chains, t.chains, aux_chains)
                            jumps = len(lines)
                            for head in low.pieces:
                                piece = ir.Rule(head, (), ir.Jump(aux), None, r.loc)
                                lines.extend(_rule_lines(piece, name, fam, rename, table))
                            if len(lines) == jumps:
                                continue
                            aux_chains.append((aux, None, _rule_lines(
                                low.shared, aux, fam, rename, table)))
                            continue
                        for piece in low:
                            lines.extend(_rule_lines(piece, name, fam, rename, table))
                    except FwcError as e:
                        if e.loc == ir.NOLOC:  # (raised below the rule: quote())
                            e = Unsupported(e.message, r.loc)
                        errors.append(e)
                    finally:
                        if t.family == "inet" and _written(lines, aux_chains) > before and \
                                ir.per_rule_state(orig.matches):
                            got = shared.setdefault(id(orig), (orig, set()))[1]
                            got.add(fam)
                            if ir.state_sees_both_families(orig.matches):
                                got.update(("ip", "ip6"))  # (also when one family's rule is empty)
                policy = c.base.policy.upper() if c.base else None
                chains.append((name, policy, lines))
                chains.extend(aux_chains)
                names.add(name)
                names.update(x[0] for x in aux_chains)
                aux_chains.clear()
    for r, fams in shared.values():
        if len(fams) == 2:
            errors.append(Unsupported(
                "a limit, quota, connection count or nth-packet counter that IPv4 and IPv6 "
                "packets share (one state in an inet rule) cannot be expressed in iptables: "
                "iptables and ip6tables keep one each", r.loc))
    if errors:
        # (an inet table's rules are written once per family: each refusal once)
        raise ErrorGroup(list({(e.message, e.loc): e for e in errors}.values()))
    texts: dict[str, list[str]] = {}
    for (fam, table), chains in out.items():
        buf = texts.setdefault(fam, [])
        buf.append(f"*{table}")
        for name, policy, _ in chains:
            buf.append(f":{name} {policy or '-'} [0:0]")
        for _, _, lines in chains:
            buf.extend(lines)
        buf.append("COMMIT")
    return {fam: "\n".join(lines) + "\n" for fam, lines in texts.items()}


def _bucket_names(rs: ir.Ruleset) -> ir.Ruleset:
    """Named limits (nft objects, one per table) renamed to the hashlimit names that carry
    their buckets: the object's own name when it fits (15 characters) and no other table
    has one of that name, else `fwl` and a hash of table and name (a hashlimit name is one
    bucket for the whole family)."""
    count: dict[str, int] = {}
    for t in rs.tables:
        for lo in t.limits:
            count[lo.name] = count.get(lo.name, 0) + 1

    def bucket(t: ir.Table, name: str) -> str:
        if len(name) <= 15 and "/" not in name and count.get(name) == 1:
            return name
        return f"fwl{zlib.crc32(f'{t.family} {t.name} {name}'.encode()):08x}"
    tables = []
    for t in rs.tables:
        if not t.limits:
            tables.append(t)
            continue
        def rule(r: ir.Rule, t=t) -> ir.Rule:
            if not any(isinstance(m, ir.NamedLimit) for m in r.matches):
                return r
            return attrs.evolve(r, matches=tuple(
                ir.NamedLimit(bucket(t, m.name), m.limit) if isinstance(m, ir.NamedLimit) else m
                for m in r.matches))
        tables.append(attrs.evolve(t, chains=tuple(
            attrs.evolve(c, rules=tuple(rule(r) for r in c.rules)) for c in t.chains)))
    return ir.Ruleset(tuple(tables))


def _one_bucket(name: str, m: ir.Limit) -> ir.HashLimit:
    """Limit `m` as the one bucket of hashlimit `name` (no --hashlimit-mode), above its rate
    for `limit rate over`.  Its bucket is forgotten after the htable expiry without packets,
    when a full one would be made: set at least twice the time a bucket takes to fill, that
    changes nothing."""
    per = ir.UNIT_SECONDS.get(m.unit, 1)
    fill_ms = -(-2 * m.burst * per * 1000 // m.rate)
    return ir.HashLimit(name, m.rate, m.unit, m.burst, above=m.negate,
                        expire_ms=max(60000, fill_ms))


def _filter_can_hold(c: ir.Chain) -> bool:
    """Whether chain `c`'s rules are ones the filter table takes (no NAT)."""
    nat = (ir.Snat, ir.Dnat, ir.Masquerade, ir.Redirect, ir.Netmap, ir.NatMap)
    return not any(isinstance(r.verdict, nat) for r in c.rules)


_NO_IIF = ("output", "postrouting")
_NO_OIF = ("prerouting", "input")


def _check_iface_direction(r: ir.Rule, hook: str) -> None:
    """iptables refuses -i in OUTPUT/POSTROUTING and -o in PREROUTING/INPUT.  In nft,
    `iifname` in postrouting is the input interface of a forwarded packet (iptables cannot
    test it there), and `oifname` in input reads "" (the rule could be rewritten, but not as
    the rule it is): refused, located."""
    for m in r.matches:
        if isinstance(m, ir.Interface) and (
                (m.field == "iifname" and hook in _NO_IIF) or
                (m.field == "oifname" and hook in _NO_OIF)):
            opt = "-i" if m.field == "iifname" else "-o"
            raise Unsupported(f"{m.field} in the {hook} hook cannot be expressed in iptables "
                              f"(iptables refuses {opt} in {hook.upper()})", r.loc)


def _written(lines: list, aux_chains: list) -> int:
    return len(lines) + sum(len(a[2]) for a in aux_chains)


def _spare_nat_chains(t: ir.Table) -> set:
    """Empty nat chains with policy accept on a hook where another nat chain of the table is
    written (the nftables wiki's `type nat hook prerouting priority 0` next to a real one): the
    other one registers the same NAT hook, so these change nothing, and iptables has one nat
    chain per hook."""
    spare: set = set()
    by_hook: dict = {}
    for c in t.chains:
        if c.base is not None and c.base.type == "nat" and not c.base.devices:
            by_hook.setdefault(c.base.hook, []).append(c)
    for chains in by_hook.values():
        empty = [c for c in chains if _no_op_base_chain(c, True)]
        if len(empty) == len(chains):
            empty = empty[1:]  # (one of them is written: it registers the hook)
        spare.update(c.name for c in empty)
    return spare


def _no_op_base_chain(c: ir.Chain, placed_nat: bool) -> bool:
    """An empty base chain with policy accept changes no packet, wherever it hooks in; an
    empty nat one only registers the family's NAT hooks, which the iptables nat table this
    output also has (`placed_nat`) registers as well."""
    if c.rules or c.base.policy != "accept" or c.base.devices:
        return False  # (a chain bound to devices has no iptables form at all: refused)
    return c.base.type in ("filter", "route") or (c.base.type == "nat" and placed_nat)


def _one_action_each(r: ir.Rule):
    """iptables has one target per rule.  For an nft rule with several actions (`log prefix
    "x" drop`): None when it has at most one; ("repeat", rules) with the matches repeated
    before each action when the matches keep no state and the statements before the last
    action only observe (log); else ("aux", rules): the actions, one per rule, for a chain the
    matches jump to once (refused for return and goto, which mean otherwise one chain down)."""
    stmts = [x for x in r.statements if not isinstance(x, ir.Counter)]
    updates = [x for x in stmts if isinstance(x, ir.IpsetUpdate)]
    if updates and len(updates) == len(stmts):
        return None  # one SET target (add and delete), see _RuleEmitter.target
    if len(stmts) + (r.verdict is not None) <= 1 or isinstance(r.verdict, ir.TProxy) or \
            any(isinstance(x, ir.TProxySet) for x in stmts):
        return None
    actions = [((st,), None) for st in stmts]
    if r.verdict is not None:
        actions.append(((), r.verdict))
    if all(isinstance(x, (ir.Log, ir.NfLog)) for x in stmts) and \
            not any(isinstance(m, ir.STATEFUL_MATCHES) for m in r.matches):
        return "repeat", [ir.Rule(r.matches, st, v, r.comment, r.loc) for st, v in actions]
    if isinstance(r.verdict, (ir.Return, ir.Goto)):
        return None  # (the emitter refuses the rule: several actions)
    return "aux", [ir.Rule((), st, v, r.comment, r.loc) for st, v in actions]


def _one_iface_each(r: ir.Rule):
    """iptables has one -i and one -o per rule.  For an nft rule with several tests of one
    interface direction: None when it has at most one each; ("same", rule) with the tests that
    another implies left out (`oifname "eth0" oifname != "eth1"`); ("aux", rules, matches) for
    negated tests only (`oifname != "lo" oifname != "tun0"`): the matches with the first
    negation jump to a chain where each other name returns, then the rule's actions follow."""
    for field in ("iifname", "oifname"):
        tests = [m for m in r.matches if isinstance(m, ir.Interface) and m.field == field]
        if len(tests) < 2:
            continue
        pos = list(dict.fromkeys(m for m in tests if not m.negate))
        negs = [m for m in tests if m.negate]
        if len(pos) > 1 or (pos and pos[0].name.endswith("+") and negs):
            raise Unsupported(f"several {field} tests in one rule cannot be expressed in "
                              "iptables (one -i/-o per rule)", r.loc)
        if pos:  # one name: the negations it does not contradict add nothing
            p = pos[0]
            if any(n.name == p.name or (n.name.endswith("+") and p.name.startswith(n.name[:-1]))
                   for n in negs):
                raise Unsupported(f"an {field} test and its own negation in one rule (it never "
                                  "matches)", r.loc)
            same = attrs.evolve(r, matches=_first_of_each(
                tuple(m for m in r.matches if m not in negs), p))
            return _one_iface_each(same) or ("same", same)
        if any(isinstance(m, ir.STATEFUL_MATCHES) for m in r.matches) or \
                isinstance(r.verdict, (ir.Return, ir.Goto)):
            raise Unsupported(f"several negated {field} tests in a rule with a stateful match, "
                              "-j RETURN or -g cannot be expressed in iptables (one -i/-o per "
                              "rule; the others need a chain of their own)", r.loc)
        first = negs[0]
        matches = tuple(m for m in r.matches if m not in negs[1:])
        back = [ir.Rule((ir.Interface(field, n.name),), (), ir.Return(), None, r.loc)
                for n in negs[1:]]
        rest = ir.Rule((), r.statements, r.verdict, None, r.loc)
        acts = _one_action_each(rest)  # (one target per rule there too)
        return "aux", back + (acts[1] if acts is not None else [rest]), matches
    return None


def _first_of_each(matches: tuple, m) -> tuple:
    """`matches` with only the first of the matches equal to `m`."""
    out, seen = [], False
    for x in matches:
        if x == m:
            if seen:
                continue
            seen = True
        out.append(x)
    return tuple(out)


def _aux_name(chain: str, placed: list, source_chains, pending: list) -> str:
    """A free name for the chain a split rule's pieces share (iptables: at most 28 chars)."""
    taken = {x[0] for x in placed} | {c.name for c in source_chains} | {x[0] for x in pending}
    for n in range(1, 10000):
        name = f"{chain[:20]}_split{n}"
        if name not in taken:
            return name
    raise AssertionError("no free chain name")


def _reaching_tables(t: ir.Table, placed: dict, sets: dict) -> dict[str, set]:
    """For each user chain a base chain reaches, the iptables tables of the placed base chains
    that reach it (empty: only base chains without an iptables table do)."""
    edges = {c.name: [x for r in c.rules for x in ir.verdict_targets(r, sets)] for c in t.chains}
    user = {c.name for c in t.chains if c.base is None}
    out: dict[str, set] = {}
    for c in t.chains:
        if c.base is not None:
            for name in ir.reachable(edges, c.name) & user:
                got = out.setdefault(name, set())
                if c.name in placed:
                    got.add(placed[c.name])
    return out


def _other_family(m, fam: str) -> bool:
    """Whether `m` holds only for packets of the other family: in an inet table nft puts the
    family test in front of a header field, negated or not (`ip saddr != 10.0.0.0/8`, `ip ttl
    64`, `icmp type != echo-request` never match an IPv6 packet)."""
    if isinstance(m, (ir.Address, ir.CtAddress)) and m.values:
        return all(ir.ip_family(a) != fam for a in m.values)
    if isinstance(m, (ir.Icmp, ir.Ttl)):
        return m.family != fam
    if isinstance(m, ir.FieldMatch) and m.expr.split()[0] in ("ip", "ip6"):
        return m.expr.split()[0] != fam  # (`ip6 saddr & ffff::ffff == 2001::7`)
    return False


def _implied_proto(r: ir.Rule, fam: str) -> Optional[int]:
    """The protocol a protocol-dependent match of `r` requires (a port, TCP flags, ICMP)."""
    implied = None
    for m in r.matches:
        if isinstance(m, ir.Port):
            implied = _PROTO_NUM[m.proto]
        elif isinstance(m, (ir.TcpFlags, ir.TcpOption)):
            implied = 6
        elif isinstance(m, ir.Icmp):
            implied = 1 if m.family == "ip" else 58
        elif tail.implied_proto(m, fam) is not None:
            implied = tail.implied_proto(m, fam)
    return implied


def _rule_lines(r: ir.Rule, chain: str, fam: str, rename: dict, table: str) -> list[str]:
    # rules of the other family never match here (inet tables); so for `dnat ip to ...`
    if any(_other_family(m, fam) for m in r.matches):
        return []
    if chain.lower() in _NO_IIF + _NO_OIF and chain.isupper():
        # (again for the pieces of a lowered rule: `iifname { "a", "b" }` in postrouting)
        _check_iface_direction(r, chain.lower())
    if ir.nat_family(r.verdict) not in (None, fam):
        return []
    implied = _implied_proto(r, fam)
    neg_protos = [m for m in r.matches if isinstance(m, ir.Proto) and m.negate]
    if implied is not None and neg_protos:
        # `ip protocol != tcp udp dport 53`: the port's protocol decides the negation
        if any(implied in m.protos for m in neg_protos):
            return []
        r = attrs.evolve(r, matches=tuple(m for m in r.matches if m not in neg_protos))
    pieces = proto_port_pieces(r)
    if pieces is not None:
        return [line for p in pieces for line in _rule_lines(p, chain, fam, rename, table)]
    e = _RuleEmitter(r, fam, table)
    words = e.emit()
    counter = next((s for s in r.statements if isinstance(s, ir.Counter)), None)
    prefix = f"[{counter.packets}:{counter.bytes}] " if counter else ""
    return [prefix + f"-A {chain} " + " ".join(words) if words else prefix + f"-A {chain}"] \
        if not e.split else [prefix + f"-A {chain} " + " ".join(w) for w in e.split]


_PROTO_KEYS = ("meta l4proto", "ip protocol", "ip6 nexthdr")


def proto_port_pieces(r: ir.Rule) -> Optional[list[ir.Rule]]:
    """A `meta l4proto . th dport { tcp . 53, udp . 53 }` lookup as one rule per protocol (-p
    tcp --dport 53, -p udp --dport 53), or None when the rule has no such lookup.  Exact: the
    pieces match disjoint packets, so each packet meets the statements and verdict at most
    once; a stateful match would count in one bucket per piece, so those rules are left whole
    (and refused)."""
    for i, m in enumerate(r.matches):
        if not (isinstance(m, ir.SetMatch) and m.name is None and not m.negate and
                len(m.keys) == 2 and m.keys[0] in _PROTO_KEYS and
                m.keys[1] in ("th dport", "th sport") and not m.element_stmts):
            continue
        if any(isinstance(x, ir.STATEFUL_MATCHES) for x in r.matches) or \
                any(type(p) is not int or p not in _PROTO_NAMES or _PROTO_NAMES[p] not in
                    _PROTO_NUM for p, _ in m.elements):
            return None
        field = m.keys[1][3:]
        return [ir.Rule(r.matches[:i] + (ir.Proto(frozenset({p})),
                                          ir.Port(_PROTO_NAMES[p], field, tuple(rs)))
                        + r.matches[i + 1:], r.statements, r.verdict, r.comment, r.loc)
                for p, rs in ir.proto_port_ranges(m).items()]
    return None


class _RuleEmitter:
    def __init__(self, rule: ir.Rule, fam: str, table: str):
        self.rule = rule
        self.fam = fam
        self.table = table
        self.split: list[list[str]] = []

    def fail(self, what: str) -> Unsupported:
        return Unsupported(f"{what} cannot be expressed in iptables", self.rule.loc)

    def emit(self) -> list[str]:
        r = self.rule
        core: list[str] = []
        mods: list[str] = []
        proto = None
        for m in r.matches:
            if isinstance(m, ir.Proto):
                if len(m.protos) != 1:
                    raise self.fail("a set of protocols")
                if not m.negate:
                    proto = next(iter(m.protos))
        implied = _implied_proto(r, self.fam)
        if proto is None and implied is not None:
            core += ["-p", _PROTO_NAMES.get(implied, str(implied))]
            proto = implied
        seen: set = set()  # core options used: iptables takes each of -s -d -p once
        for m in r.matches:
            core_part, mod_part = self.match(m, proto)
            opt = next((w for w in core_part if w in ("-s", "-d", "-p")), None)
            if opt in seen:
                if opt == "-p":
                    raise self.fail("two tests of the protocol in one rule (iptables takes one "
                                    "-p)")
                # a second address test: -m iprange holds one range, negated or not
                core_part, mod_part = [], self.iprange(m)
            elif opt is not None:
                seen.add(opt)
            core += core_part
            mods += mod_part
        if r.comment is not None:
            mods += ["-m", "comment", "--comment", quote(r.comment)]
        target = self.target(proto)
        return core + mods + target

    def iprange(self, m) -> list[str]:
        """A second test of the same address field, as -m iprange (one range per match)."""
        vals = m.values if isinstance(m, ir.Address) else ()
        if len(vals) != 1:
            raise self.fail("a second test of the same address field that is not one range")
        v = vals[0]
        lo, hi = (v.lo, v.hi) if isinstance(v, ir.AddrRange) else \
            (v.network_address, v.broadcast_address)
        opt = "--src-range" if m.field == "saddr" else "--dst-range"
        return ["-m", "iprange"] + (["!"] if m.negate else []) + [opt, f"{lo}-{hi}"]

    # -- matches: (core words, module words)
    def ct_status(self, m: ir.CtStatus) -> list[str]:
        """--ctstatus knows EXPECTED SEEN_REPLY ASSURED CONFIRMED; the NAT bits are --ctstate's
        virtual SNAT/DNAT states, which a packet without conntrack entry (invalid, untracked)
        fails, negated or not, only when its own state is listed too."""
        if "DYING" in m.bits:
            raise self.fail("ct status dying")
        nat = m.bits & set(ir.CT_VIRTUAL_STATES)
        if nat and nat != m.bits:
            raise self.fail("a test of NAT and other conntrack status bits at once")
        if not nat:
            return ["-m", "conntrack"] + (["!"] if m.negate else []) + \
                ["--ctstatus", ",".join(_order(m.bits, ir.CT_STATUS_BITS))]
        states = _order(nat, ir.CT_VIRTUAL_STATES)
        if not m.negate:
            return ["-m", "conntrack", "--ctstate", ",".join(states)]
        return ["-m", "conntrack", "!", "--ctstate", ",".join(states + ["INVALID", "UNTRACKED"])]

    def match(self, m, proto) -> tuple[list[str], list[str]]:
        neg = ["!"] if getattr(m, "negate", False) else []
        if isinstance(m, ir.Interface):
            return neg + ["-i" if m.field == "iifname" else "-o", quote(m.name)], []
        if isinstance(m, ir.Fragment):
            return neg + ["-f"], []
        if isinstance(m, ir.Proto):
            p = next(iter(m.protos))
            if p == 0:  # (xt: protocol 0 is "all", also by the name hopopt)
                raise self.fail("protocol 0 (iptables reads -p 0 as every protocol)")
            return neg + ["-p", _PROTO_NAMES.get(p, str(p))], []
        if isinstance(m, ir.Address):
            if len(m.values) != 1:
                raise self.fail("a set of several addresses in one rule")
            v = m.values[0]
            if isinstance(v, ir.AddrRange):
                opt = "--src-range" if m.field == "saddr" else "--dst-range"
                return [], ["-m", "iprange"] + neg + [opt, f"{v.lo}-{v.hi}"]
            return neg + ["-s" if m.field == "saddr" else "-d", _net(v)], []
        if isinstance(m, ir.FieldMatch) and (masked := _masked_address(m)) is not None:
            return neg + masked, []
        if m == ir.NEVER:  # (what an inverted range of length, iprange... became)
            return [], ["-m", "length", "--length", "65535:0"]
        if isinstance(m, ir.Port):
            pname = m.proto
            # (iptables has no udplite match: its ports go through multiport)
            if m.negate and m.ranges == ir.ALL_PORTS:
                # matches no packet: iptables-nft 1.8.9 loads `! --dport 0:65535` as no port
                # test at all (every packet matches), multiport's form as written (kernel-checked)
                opt = {"sport": "--sports", "dport": "--dports", "port": "--ports"}[m.field]
                return [], ["-m", "multiport", "!", opt, "0:65535"]
            if len(m.ranges) == 1 and m.field != "port" and pname != "udplite":
                opt = "--sport" if m.field == "sport" else "--dport"
                return [], ["-m", pname] + neg + [opt, _prange(m.ranges[0])]
            if ir.multiport_slots(m.ranges) > ir.MULTIPORT_SLOTS:
                raise self.fail("more than 15 ports in one multiport match (a range counts "
                                "as two)")
            opt = {"sport": "--sports", "dport": "--dports", "port": "--ports"}[m.field]
            return [], ["-m", "multiport"] + neg + [opt, ",".join(_prange(x) for x in m.ranges)]
        if isinstance(m, ir.TcpFlags):
            return [], self.tcp_flags(m)
        if isinstance(m, ir.TcpOption):
            return [], ["-m", "tcp"] + neg + ["--tcp-option", str(m.kind)]
        if isinstance(m, ir.Icmp):
            mod, opt = ("icmp", "--icmp-type") if m.family == "ip" else ("icmp6", "--icmpv6-type")
            if m.family == "ip" and m.type == 255:  # (xt_icmp: type 255 matches every type)
                raise self.fail("ICMP type 255 (iptables reads it as every type)")
            if m.type is None:
                if m.codes != ir.Range(0, 255):
                    raise self.fail("an ICMP code without a type")
                if m.family == "ip6":  # (icmp6 has no `any`: -p ipv6-icmp says it, added above)
                    return [], (["-m", "length", "--length", "65535:0"] if neg else [])
                return [], ["-m", mod] + neg + [opt, "any"]
            if m.codes == ir.Range(0, 255):
                return [], ["-m", mod] + neg + [opt, str(m.type)]
            if m.codes.lo != m.codes.hi:
                raise self.fail("a range of ICMP codes")
            return [], ["-m", mod] + neg + [opt, f"{m.type}/{m.codes.lo}"]
        if isinstance(m, ir.CtState):
            return [], ["-m", "conntrack"] + neg + ["--ctstate", ",".join(_order(m.states, ir.CT_STATES + ir.CT_VIRTUAL_STATES))]
        if isinstance(m, ir.CtStatus):
            return [], self.ct_status(m)
        if isinstance(m, ir.CtDirection):
            # `! --ctdir` cannot be inverted; with an entry the direction is one of two, without
            # one neither matches: NOT REPLY == ORIGINAL exactly
            other = {"ORIGINAL": "REPLY", "REPLY": "ORIGINAL"}[m.direction]
            return [], ["-m", "conntrack", "--ctdir", other if m.negate else m.direction]
        if isinstance(m, ir.CtProto):
            return [], ["-m", "conntrack"] + neg + ["--ctproto", str(m.proto)]
        if isinstance(m, ir.CtAddress):
            if len(m.values) != 1 or isinstance(m.values[0], ir.AddrRange):
                raise self.fail("a conntrack address set or range")
            opt = {("original", "saddr"): "--ctorigsrc", ("original", "daddr"): "--ctorigdst",
                   ("reply", "saddr"): "--ctreplsrc", ("reply", "daddr"): "--ctrepldst"}[(m.which, m.field)]
            return [], ["-m", "conntrack"] + neg + [opt, _net(m.values[0])]
        if isinstance(m, ir.CtPort):
            if len(m.ranges) != 1:
                raise self.fail("a set of conntrack ports")
            opt = {("original", "sport"): "--ctorigsrcport", ("original", "dport"): "--ctorigdstport",
                   ("reply", "sport"): "--ctreplsrcport", ("reply", "dport"): "--ctrepldstport"}[(m.which, m.field)]
            return [], ["-m", "conntrack"] + neg + [opt, _prange(m.ranges[0])]
        if isinstance(m, ir.CtExpire):
            lo, hi = m.range.lo, m.range.hi
            if lo % 1000 or (hi % 1000 != 999 and hi < 0xFFFFFFFF):
                raise self.fail(f"ct expiration {lo}-{hi} ms (--ctexpire compares whole seconds)")
            lo, hi = lo // 1000, hi // 1000
            v = str(lo) if lo == hi else f"{lo}:{hi}"
            return [], ["-m", "conntrack"] + neg + ["--ctexpire", v]
        if isinstance(m, ir.Mark):
            mod = "mark" if m.kind == "meta" else "connmark"
            v = hex(m.value) if m.mask == 0xFFFFFFFF else f"{hex(m.value)}/{hex(m.mask)}"
            return [], ["-m", mod] + neg + ["--mark", v]
        if isinstance(m, ir.Mac):
            return [], ["-m", "mac"] + neg + ["--mac-source", m.addr.upper()]
        if isinstance(m, ir.AddrType):
            opt = "--src-type" if m.field == "saddr" else "--dst-type"
            words = ["-m", "addrtype"] + neg + [opt, ",".join(sorted(m.types))]
            if m.limit_iface:
                words.append(f"--limit-iface-{m.limit_iface}")
            return [], words
        if isinstance(m, (ir.SkUid, ir.SkGid)):
            opt = "--uid-owner" if isinstance(m, ir.SkUid) else "--gid-owner"
            v = str(m.range.lo) if m.range.lo == m.range.hi else f"{m.range.lo}-{m.range.hi}"
            return [], ["-m", "owner"] + neg + [opt, v]
        if isinstance(m, ir.SocketExists):
            return [], ["-m", "owner"] + neg + ["--socket-exists"]
        if isinstance(m, ir.MssOutside):
            r = m.range
            return [], ["-m", "tcpmss", "!", "--mss",
                        str(r.lo) if r.lo == r.hi else f"{r.lo}:{r.hi}"]
        if isinstance(m, ir.Socket):
            return [], ["-m", "socket"] + [f for f, on in (
                ("--transparent", m.transparent), ("--nowildcard", m.nowildcard),
                ("--restore-skmark", m.restore_mark)) if on]
        if isinstance(m, ir.PktType):
            return [], ["-m", "pkttype"] + neg + ["--pkt-type", m.type]
        if isinstance(m, ir.Length):
            lo, hi = m.range.lo, min(m.range.hi, 0xFFFF)  # (xt_length: 16 bits; nft's meta 32)
            if lo > hi:  # no packet is that long: `65535:0` matches none, its negation all
                return [], ([] if m.negate else ["-m", "length", "--length", "65535:0"])
            v = str(lo) if lo == hi else f"{lo}:{hi}"
            return [], ["-m", "length"] + neg + ["--length", v]
        if isinstance(m, ir.Ttl):
            mod, p = ("ttl", "--ttl-") if m.family == "ip" else ("hl", "--hl-")
            if m.op == "ne":
                return [], ["-m", mod, "!", p + "eq", str(m.value)]
            return [], ["-m", mod, p + m.op, str(m.value)]
        if isinstance(m, ir.Dscp):
            return [], ["-m", "dscp"] + neg + ["--dscp", hex(m.value)]
        if isinstance(m, ir.Tos):
            return [], ["-m", "tos"] + neg + ["--tos", f"{hex(m.value)}/{hex(m.mask)}"]
        if isinstance(m, ir.Limit):
            self.check_limit(m)
            if m.negate:
                return self.match(self.limit_over(m), proto)
            return [], ["-m", "limit"] + neg + ["--limit", f"{m.rate}/{m.unit}", "--limit-burst", str(m.burst)]
        if isinstance(m, ir.NamedLimit):  # (named by _bucket_names)
            self.check_limit(m.limit)
            return self.match(_one_bucket(m.name, m.limit), proto)
        if isinstance(m, ir.HashLimit):
            w = ["-m", "hashlimit", "--hashlimit-above" if m.above else "--hashlimit-upto",
                 f"{m.rate}/{m.unit[:3] if m.unit == 'second' else m.unit}", "--hashlimit-burst", str(m.burst)]
            if m.mode:
                w += ["--hashlimit-mode", ",".join(m.mode)]
            if m.srcmask is not None:
                w += ["--hashlimit-srcmask", str(m.srcmask)]
            if m.dstmask is not None:
                w += ["--hashlimit-dstmask", str(m.dstmask)]
            if m.expire_ms is not None:
                w += ["--hashlimit-htable-expire", str(m.expire_ms)]
            return [], w + ["--hashlimit-name", m.name]
        if isinstance(m, ir.SetLookup):
            return [], ["-m", "set"] + neg + ["--match-set", m.name, ",".join(m.fields)]
        if isinstance(m, ir.IpsecPolicy):
            return [], ["-m", "policy", "--dir", m.direction, "--pol", "ipsec" if m.ipsec else "none"]
        if isinstance(m, ir.PhysDevBridged):
            return [], ["-m", "physdev"] + neg + ["--physdev-is-bridged"]
        if isinstance(m, ir.Helper):
            return [], ["-m", "helper"] + neg + ["--helper", quote(m.name)]
        if isinstance(m, ir.Statistic):
            if m.mode == "random":
                return [], ["-m", "statistic", "--mode", "random"] + neg + ["--probability", repr(m.probability)]
            return [], ["-m", "statistic", "--mode", "nth"] + neg + ["--every", str(m.every), "--packet", str(m.packet)]
        words = tail.match_words(m, self.fam)
        if words is not None:
            return [], words
        raise self.fail(describe(m))

    def nat_flags(self, flags, target: str) -> list[str]:
        extra = sorted(set(flags) - _NAT_TARGET_FLAGS[target])
        if extra:
            raise self.fail(f"{target.lower()} {','.join(extra)} ({target} has no "
                            f"{' or '.join(_NAT_FLAG_OPTS[f] for f in extra)})")
        return [_NAT_FLAG_OPTS[f] for f in sorted(flags)]

    def check_limit(self, m: ir.Limit) -> None:
        if m.bytes:  # (xt_hashlimit's byte mode caps a bucket at one second of credit)
            raise self.fail(f"byte-rate limit ({m.rate} bytes/{m.unit}: xt_limit counts "
                            "packets, and xt_hashlimit's byte bucket is another)")
        if m.unit == "week":  # (xt_limit's and xt_hashlimit's longest unit is the day)
            raise self.fail(f"limit {m.rate}/week (iptables' longest unit is the day)")
        per = ir.UNIT_SECONDS.get(m.unit, 1)
        if m.rate > 10000 * per or m.burst > 10000:  # (iptables: "Rate too fast")
            raise self.fail(f"limit {m.rate}/{m.unit} burst {m.burst} (iptables allows at "
                            "most 10000/second and a burst of 10000)")

    def limit_over(self, m: ir.Limit) -> ir.HashLimit:
        """nft `limit rate over R burst B`: xt_limit has no inversion, but a hashlimit with no
        --hashlimit-mode is one bucket (the same token bucket fwc maps nft's per-key limits
        to), and --hashlimit-above its inversion (_one_bucket).  The name comes from the nft
        rule's place, so the iptables rules one nft rule became share its bucket, as they did
        in nft."""
        loc = self.rule.loc
        if loc.line <= 0:
            raise self.fail("a negated limit (nft `limit rate over`) of a rule without a source "
                            "location (its hashlimit needs a name of its own)")
        return _one_bucket(f"fwc_{loc.line}_{loc.col}"[:15], m)

    # -- statements and verdict -> target words (iptables has one target per rule)
    def tcp_flags(self, m: ir.TcpFlags) -> list[str]:
        """--tcp-flags knows six flags; ECE and CWR are -m ecn's --ecn-tcp-ece/--ecn-tcp-cwr
        (`tcp flags == syn` tests all eight: both modules)."""
        ecn = [f for f in ("ECE", "CWR") if f in m.mask]
        core = m.mask - set(ecn)
        if m.negate and ecn and (core or len(ecn) > 1):
            raise self.fail("a negated TCP flags test of ECE or CWR with other flags")
        out = []
        outside = m.comp - m.mask  # (compared flags outside the mask: the test never holds)
        if outside & {"ECE", "CWR"}:
            raise self.fail("a TCP flags test comparing ECE or CWR outside its mask")
        if core or outside or not ecn:
            # (`--tcp-flags NONE NONE` is not nothing: -m tcp never matches a later fragment)
            out += ["-m", "tcp"] + (["!"] if m.negate else []) + \
                ["--tcp-flags", _flags(core), _flags((m.comp & core) | outside)]
        if ecn:
            out += ["-m", "ecn"]
            for f in ecn:
                is_set = (f in m.comp) != m.negate
                out += ([] if is_set else ["!"]) + \
                    ["--ecn-tcp-ece" if f == "ECE" else "--ecn-tcp-cwr"]
        return out

    def target(self, proto) -> list[str]:
        r = self.rule
        stmts = [s for s in r.statements if not isinstance(s, ir.Counter)]
        updates = [s for s in stmts if isinstance(s, ir.IpsetUpdate)]
        if updates and len(updates) == len(stmts) and \
                sorted(u.op for u in updates) in (["add"], ["del"], ["add", "del"]):
            words: list[list[str]] = [self.set_target(updates)]  # (one SET: add and delete)
        else:
            words = [self.statement(s) for s in stmts]
        if r.verdict is not None:
            words.append(self.verdict(r.verdict, proto))
        if len(words) > 1:
            raise self.fail("a rule with several actions (" + ", ".join(
                ir.construct_name(s) for s in stmts + ([r.verdict] if r.verdict else [])) + ")")
        return words[0] if words else []

    @staticmethod
    def set_target(updates: list) -> list[str]:
        """The IpsetUpdates of a rule (an add, a delete, or both) as one SET target."""
        w = ["-j", "SET"]
        for u in sorted(updates, key=lambda u: u.op):
            w += [f"--{u.op}-set", u.name, ",".join(u.fields)]
            if u.op == "add" and u.exist:
                w.append("--exist")
            if u.op == "add" and u.timeout is not None:
                w += ["--timeout", str(u.timeout)]
        return w

    def statement(self, s) -> list[str]:
        if isinstance(s, ir.Log):
            w = ["-j", "LOG"]
            if s.prefix:  # ("" is no prefix: iptables refuses an empty --log-prefix)
                if len(s.prefix.encode()) > 29:  # (iptables-restore would cut it)
                    raise self.fail(f"a log prefix over 29 bytes ({s.prefix!r})")
                w += ["--log-prefix", quote(s.prefix)]
            if s.level is not None and s.level != 4:
                w += ["--log-level", str(s.level)]
            for f in sorted(s.flags):
                if f not in _LOG_FLAGS:
                    raise self.fail(f"log flag {f}")
                w.append(_LOG_FLAGS[f])
            return w
        if isinstance(s, ir.NfLog):
            w = ["-j", "NFLOG"]
            if s.group:
                w += ["--nflog-group", str(s.group)]
            if s.prefix:
                if len(s.prefix.encode()) > 127:
                    raise self.fail(f"an nflog prefix over 127 bytes ({s.prefix!r})")
                w += ["--nflog-prefix", quote(s.prefix)]
            if s.size is not None:
                w += ["--nflog-size", str(s.size)]
            if s.threshold is not None:
                w += ["--nflog-threshold", str(s.threshold)]
            return w
        if isinstance(s, ir.SetMark):
            if s.shift and s.kind != "ct":
                raise Unsupported("a shifted meta mark (MARK has no shift)", self.rule.loc)
            return ["-j", "MARK" if s.kind == "meta" else "CONNMARK", "--set-xmark",
                    f"{hex(s.value)}/{hex(s.mask)}"] + _shift_words(s.shift)
        if isinstance(s, ir.CopyMark):
            if s.to == "ct":
                return ["-j", "CONNMARK", "--save-mark", "--nfmask", hex(s.src_mask),
                        "--ctmask", hex(s.dst_mask)] + _shift_words(s.shift)
            return ["-j", "CONNMARK", "--restore-mark", "--nfmask", hex(s.dst_mask),
                    "--ctmask", hex(s.src_mask)] + _shift_words(s.shift)
        if isinstance(s, ir.Notrack):
            self._need_raw("notrack")
            return ["-j", "CT", "--notrack"]
        if isinstance(s, ir.CtHelperSet):
            if not s.template and self.table == "raw":
                raise self.fail("nft's ct helper set before conntrack (it does nothing there; "
                                "-j CT --helper would set the helper)")
            self._need_raw("ct helper set")
            return ["-j", "CT", "--helper", quote(s.name)]
        if isinstance(s, ir.CtZoneSet):
            self._need_raw("ct zone set")
            return ["-j", "CT", "--zone", str(s.zone)]
        if isinstance(s, ir.TcpMss):
            if not any(isinstance(m, ir.TcpFlags) and not m.negate and "SYN" in m.mask and
                       "SYN" in m.comp for m in self.rule.matches):
                raise self.fail("TCPMSS in a rule that does not itself match SYN (iptables "
                                "accepts TCPMSS only with --syn or --tcp-flags X SYN in the same "
                                "rule; a SYN test in a jumping rule does not count)")
            return ["-j", "TCPMSS", "--clamp-mss-to-pmtu"] if s.mss is None else ["-j", "TCPMSS", "--set-mss", str(s.mss)]
        if isinstance(s, ir.SetTtl):
            t, p = ("TTL", "--ttl-") if s.family == "ip" else ("HL", "--hl-")
            self._need_mangle(t)
            return ["-j", t, p + s.op, str(s.value)]
        if isinstance(s, ir.SetDscp):
            self._need_mangle("DSCP")
            return ["-j", "DSCP", "--set-dscp", hex(s.value)]
        if isinstance(s, ir.SetTos):
            self._need_mangle("TOS")
            return ["-j", "TOS", "--set-tos", f"{hex(s.value)}/{hex(s.mask)}"]
        if isinstance(s, ir.Checksum):
            self._need_mangle("CHECKSUM")
            return ["-j", "CHECKSUM", "--checksum-fill"]
        if isinstance(s, ir.Trace):
            self._need_raw("trace")
            return ["-j", "TRACE"]
        words = tail.statement_words(s)
        if words is not None:
            return words
        if isinstance(s, ir.NamedCounter):
            raise self.fail(f"the named counter '{s.name}' (iptables has one counter per rule, "
                            "none shared between rules)")
        if isinstance(s, ir.SetUpdate):
            raise self.fail(f"'{s.op} @{s.set} {{ {' . '.join(s.keys)} }}' (iptables' SET target "
                            "updates ipsets, and this is an nft set)")
        if isinstance(s, ir.FieldSet):
            raise self.fail(f"'{s.expr} set' (no iptables target writes this field)")
        raise self.fail(ir.construct_name(s))

    def _need_mangle(self, target: str):
        # (xt_TTL, xt_HL, xt_DSCP/TOS, xt_CHECKSUM: `.table = "mangle"`; kernel-checked)
        if self.table != "mangle":
            raise self.fail(f"{target} outside the mangle table (iptables-restore refuses it in "
                            f"{self.table}; nft sets the field in any chain)")

    def _need_raw(self, what: str):
        if self.table != "raw":
            raise self.fail(f"{what} outside the raw table (priority -300)")

    def verdict(self, v, proto) -> list[str]:
        if isinstance(v, ir.Accept):
            return ["-j", "ACCEPT"]
        if isinstance(v, ir.Drop):
            return ["-j", "DROP"]
        if isinstance(v, ir.Return):
            return ["-j", "RETURN"]
        if isinstance(v, ir.Jump):
            return ["-j", v.chain]
        if isinstance(v, ir.Goto):
            return ["-g", v.chain]
        if isinstance(v, ir.Reject):
            table = _REJECT_V4 if self.fam == "ip" else _REJECT_V6
            kind = v.with_ or "port-unreachable"
            own = "icmp-" if self.fam == "ip" else "icmp6-"
            if kind.startswith(own) and kind[len(own):] in table:
                kind = kind[len(own):]  # (named with its family, as from an inet table)
            if kind not in table:
                raise self.fail(f"reject with {kind}")
            if kind == "tcp-reset" and proto != 6:
                raise self.fail("reject with tcp reset without a tcp protocol match")
            return ["-j", "REJECT", "--reject-with", table[kind]]
        if isinstance(v, ir.Queue):
            w = ["-j", "NFQUEUE"]
            if v.num.lo != v.num.hi:
                w += ["--queue-balance", f"{v.num.lo}:{v.num.hi}"]
            else:
                w += ["--queue-num", str(v.num.lo)]
            if v.bypass:
                w.append("--queue-bypass")
            if v.fanout:
                w.append("--queue-cpu-fanout")
            return w
        if ir.nat_maps_ports(v) and proto not in (6, 17, 132, 33):
            # (the NAT targets: "Need TCP, UDP, SCTP or DCCP with port specification")
            raise self.fail("a NAT port mapping for a protocol other than tcp, udp, sctp or dccp")
        if isinstance(v, (ir.Snat, ir.Dnat)):
            if len(v.to) != 1:
                raise self.fail("several NAT targets")
            opt = "--to-source" if isinstance(v, ir.Snat) else "--to-destination"
            w = ["-j", "SNAT" if isinstance(v, ir.Snat) else "DNAT", opt, _nat(v.to[0], self.fam)]
            return w + self.nat_flags(v.flags, w[1])
        if isinstance(v, (ir.Masquerade, ir.Redirect)):
            w = ["-j", "MASQUERADE" if isinstance(v, ir.Masquerade) else "REDIRECT"]
            if v.ports is not None:
                w += ["--to-ports", _drange(v.ports)]
            return w + self.nat_flags(v.flags, w[1])
        if isinstance(v, ir.TProxy):
            return tail.tproxy_words(v)
        if isinstance(v, ir.Netmap):
            return ["-j", "NETMAP", "--to", _net(v.to)]
        if isinstance(v, ir.VerdictMap):  # (lower_rule expands the ones iptables can test)
            key = " . ".join(" ".join(k.split()) for k in v.keys)
            raise self.fail(f"a verdict map on '{key}' (iptables has no test for one of its "
                            "keys, or for an element)")
        if isinstance(v, ir.NatMap):
            key = " . ".join(v.keys)
            raise self.fail(f"'{v.kind} to {key} map' (iptables has no test for one of its keys, "
                            "or an element is not an address and port its target takes)")
        raise self.fail(ir.construct_name(v))


_NAT_FLAG_OPTS = {"random": "--random", "persistent": "--persistent",
                  "fully-random": "--random-fully"}
# the flags each NAT target takes (iptables 1.8.9: "unknown option" for the others)
_NAT_TARGET_FLAGS = {"SNAT": {"random", "persistent", "fully-random"},
                     "DNAT": {"random", "persistent"}, "MASQUERADE": {"random", "fully-random"},
                     "REDIRECT": {"random"}}


def _net(n) -> str:
    if n.prefixlen == n.max_prefixlen:
        return f"{n.network_address}/{n.prefixlen}"
    return str(n)


def _prange(r: ir.Range) -> str:
    return str(r.lo) if r.lo == r.hi else f"{r.lo}:{r.hi}"


def _drange(r: ir.Range) -> str:
    return str(r.lo) if r.lo == r.hi else f"{r.lo}-{r.hi}"


def _nat(t: ir.NatTarget, fam: str) -> str:
    a = ""
    if isinstance(t.addr, ir.AddrRange):
        a = f"{t.addr.lo}-{t.addr.hi}"
    elif t.addr is not None:
        a = str(t.addr.network_address)
    if fam == "ip6" and a and t.ports is not None:
        a = f"[{a}]"
    if t.ports is not None:
        return f"{a}:{_drange(t.ports)}"
    return a


def _flags(fs) -> str:
    if not fs:
        return "NONE"
    return ",".join(f for f in ir.TCP_FLAGS if f in fs)


def _order(items, order) -> list[str]:
    return [x for x in order if x in items] + sorted(x for x in items if x not in order)


def _shift_words(shift: int) -> list[str]:
    if not shift:
        return []
    return ["--left-shift-mark", str(shift)] if shift > 0 else ["--right-shift-mark", str(-shift)]


_ADDR_FIELDS = {"ip saddr": "-s", "ip daddr": "-d", "ip6 saddr": "-s", "ip6 daddr": "-d"}


def _masked_address(m: ir.FieldMatch) -> Optional[list[str]]:
    """`ip saddr & 255.0.255.0 == 10.0.12.0` is `-s 10.0.12.0/255.0.255.0` (iptables takes a
    non-contiguous netmask, ip6tables one written as an address); None when it is not that.
    A value with bits outside the mask never matches; iptables would mask it: not written."""
    opt = _ADDR_FIELDS.get(" ".join(m.expr.split()))
    if opt is None or m.op != "eq" or m.mask is None or m.xor is not None or len(m.values) != 1:
        return None
    v = m.values[0]
    if not isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)) or \
            v.prefixlen != v.max_prefixlen or (v.version == 4) != m.expr.startswith("ip "):
        return None
    value = int(v.network_address)
    if value & ~m.mask:
        return None
    mask = (ipaddress.IPv4Address if v.version == 4 else ipaddress.IPv6Address)(m.mask)
    return [opt, f"{v.network_address}/{mask}"]
