"""`fwc lint`: what in a ruleset probably does not do what its author wants.

Every check reads the IR only (the same for iptables and nft input) and returns Findings:
warnings (a rule that can never match, replies that are dropped, a chain nothing uses, ...) and
notes (where the established-first fast path cannot be put first, constructs nftables cannot
express).  The checks of the Q&A this project grew from are here: a DROP policy without an
ESTABLISHED rule drops the replies to the host's own connections; an OUTPUT DROP policy that
allows no DNS breaks updates and curl.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

import attrs

from fwc import ir
from fwc.errors import ErrorGroup, FwcError
from fwc.passes.analysis import chain_references, verdict_targets
from fwc.passes.notes import Note, source_line

FILTER_HOOKS = ("input", "forward", "output")


@attrs.frozen
class Finding:
    """One thing `lint` found: `level` warning|note, `code` the check's short name (as printed
    in brackets), `message`, and `loc` the rule or chain it is about."""

    level: str  # warning | note
    code: str  # a short name of the check, e.g. "no-established"
    message: str
    loc: ir.Loc = ir.NOLOC

    def format(self, with_source: bool = True) -> str:
        text = f"{self.loc}: {self.level}: {self.message} [{self.code}]"
        line = source_line(self.loc) if with_source else None
        return text + ("\n    " + line if line else "")

    def to_json(self) -> dict:
        return {"level": self.level, "code": self.code, "message": self.message,
                "file": self.loc.file, "line": self.loc.line, "col": self.loc.col}


# ----------------------------------------------------------------------------- helpers


def _chains(t: ir.Table) -> dict[str, ir.Chain]:
    return {c.name: c for c in t.chains}


def _reachable(t: ir.Table, start: ir.Chain) -> list[ir.Chain]:
    """`start` and every chain it can jump or go to, directly or not."""
    by_name = _chains(t)
    out, todo, seen = [], [start], {start.name}
    while todo:
        c = todo.pop()
        out.append(c)
        for r in c.rules:
            for name, _ in verdict_targets(r.verdict):
                if name not in seen and name in by_name:
                    seen.add(name)
                    todo.append(by_name[name])
    return out


def _drops_by_default(t: ir.Table, c: ir.Chain, depth: int = 0) -> bool:
    """The packets no rule decides are dropped: policy drop, or a last rule that drops or
    rejects everything (also through an unconditional jump or goto at the end)."""
    if c.base is not None and c.base.policy == "drop":
        return True
    if not c.rules or depth > 8:
        return False
    last = c.rules[-1]
    if last.matches:
        return False
    if isinstance(last.verdict, (ir.Drop, ir.Reject)):
        return True
    if isinstance(last.verdict, (ir.Jump, ir.Goto)):
        target = _chains(t).get(last.verdict.chain)
        return target is not None and _drops_by_default(t, target, depth + 1)
    return False


def _accepts(rules: Iterable[ir.Rule], pred: Callable[[ir.Rule], bool]) -> bool:
    return any(isinstance(r.verdict, ir.Accept) and pred(r) for r in rules)


def _has_state(r: ir.Rule, state: str) -> bool:
    return any(isinstance(m, ir.CtState) and not m.negate and state in m.states
               for m in r.matches)


def _vmap_accepts(rules: Iterable[ir.Rule], want: Callable[[dict], bool]) -> bool:
    """Does a verdict map accept a key that `want` ({key expression: value}) likes?"""
    for r in rules:
        v = r.verdict
        if isinstance(v, ir.VerdictMap) and v.name is None:
            keys = [" ".join(k.split()) for k in v.keys]
            for key, verdict in v.elements:
                key = key if isinstance(key, tuple) else (key,)
                if isinstance(verdict, ir.Accept) and len(key) == len(keys) and \
                        want(dict(zip(keys, key))):
                    return True
    return False


def _accepts_state_by_vmap(rules: Iterable[ir.Rule], state: str) -> bool:
    return _vmap_accepts(rules, lambda k: str(k.get("ct state")) == state.lower())


def _covers(v, n: int) -> bool:
    if isinstance(v, ir.Range):
        return v.lo <= n <= v.hi
    return v == n or str(v) == str(n)


_PROTO_KEYS = ("meta l4proto", "ip protocol", "ip6 nexthdr")
_IIF_KEYS = ("iifname", "meta iifname", "iif", "meta iif")


# ----------------------------------------------------------------------------- checks


def _dropping_chains(rs: ir.Ruleset):
    """(table, base chain, the rules it and the chains it jumps to hold) of the filter chains
    on input/forward/output that drop what no rule accepts, and accept something (one that
    accepts nothing drops everything on purpose, e.g. FORWARD DROP on a host)."""
    for t in rs.tables:
        for c in t.chains:
            b = c.base
            if b is None or b.type != "filter" or b.hook not in FILTER_HOOKS or \
                    not _drops_by_default(t, c):
                continue
            rules = [r for ch in _reachable(t, c) for r in ch.rules]
            if _accepts_anything(rules):
                yield t, c, rules


def check_established(rs: ir.Ruleset) -> list[Finding]:
    """A filter chain that drops by default needs an ESTABLISHED accept, or the replies to the
    connections it (or the other direction) allows are dropped."""
    out = []
    for _t, c, rules in _dropping_chains(rs):
        if _accepts(rules, lambda r: _has_state(r, "ESTABLISHED")) or \
                _accepts_state_by_vmap(rules, "ESTABLISHED"):
            continue
        who = {"input": "the host's own connections (DNS, updates)",
               "output": "connections made to the host (its SSH or web server)",
               "forward": "forwarded connections"}[c.base.hook]
        out.append(Finding(
            "warning", "no-established",
            f"chain {c.name} drops what no rule accepts but accepts no ESTABLISHED packets: "
            f"the replies to {who} are dropped; accept `ct state established,related` "
            f"(iptables: -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT) first",
            c.loc))
    return out


def check_host_basics(rs: ir.Ruleset) -> list[Finding]:
    """Loopback and IPv6 neighbour discovery on input, DNS on output, for chains that drop by
    default (and do not accept everything)."""
    out = []
    for t, c, rules in _dropping_chains(rs):
        if _accepts(rules, lambda r: not r.matches):
            continue
        b = c.base
        if b.hook == "input":
            lo = _accepts(rules, lambda r: any(_is_lo(m) for m in r.matches)) or \
                _vmap_accepts(rules, lambda k: any(k.get(x) == "lo" for x in _IIF_KEYS))
            if not lo:
                out.append(Finding(
                    "warning", "loopback",
                    f"chain {c.name} drops what no rule accepts and accepts nothing on lo: "
                    "programs talking to 127.0.0.1 / ::1 (local DNS caches, databases) "
                    "fail; accept `iifname lo` (iptables: -i lo -j ACCEPT)", c.loc))
            if t.family in ("ip6", "inet") and not _accepts(rules, _icmpv6) and \
                    not _vmap_accepts(rules, lambda k: _covers(k.get("icmpv6 type"), 135)):
                out.append(Finding(
                    "warning", "ipv6-nd",
                    f"chain {c.name} drops ICMPv6: IPv6 neighbour discovery fails, so IPv6 "
                    "stops working; accept at least neighbour solicitations and "
                    "advertisements (ICMPv6 types 135, 136)", c.loc))
        if b.hook == "output" and not _accepts(rules, lambda r: _could_match(r, 17, 53)) \
                and not _vmap_accepts(rules, _dns_key):
            out.append(Finding(
                "warning", "output-dns",
                f"chain {c.name} drops what no rule accepts and allows no DNS (udp port "
                "53): name lookups fail, and with them package updates and curl; allow "
                "DNS to your resolvers", c.loc))
    return out


def _dns_key(k: dict) -> bool:
    if _covers(k.get("udp dport"), 53):
        return True
    proto = next((k[x] for x in _PROTO_KEYS if x in k), None)
    return _covers(k.get("th dport"), 53) and proto is not None and _covers(proto, 17)


def _could_match(r: ir.Rule, proto: int, dport: int, state: str = "NEW") -> bool:
    """Can a new connection's packet of `proto` to `dport` match `r` (its other conditions,
    addresses, interfaces, marks..., taken as satisfiable)?"""
    for m in r.matches:
        if isinstance(m, ir.Proto) and (proto in m.protos) == m.negate:
            return False
        if isinstance(m, ir.Port):
            if ir.L4_PROTOS.get(m.proto, -1) != proto:
                return False
            if m.field in ("dport", "port") and \
                    any(x.lo <= dport <= x.hi for x in m.ranges) == m.negate:
                return False
            if m.field == "sport" and not m.negate and not any(x.hi >= 1024 for x in m.ranges):
                return False  # a query leaves from an unprivileged port (1024-65535)
        if isinstance(m, ir.CtState) and (state in m.states) == m.negate:
            return False
        if isinstance(m, (ir.Icmp, ir.TcpFlags, ir.TcpOption)):
            return False
        if isinstance(m, ir.Interface) and m.name == "lo" and not m.negate:
            return False  # (to resolvers elsewhere: a local stub on lo still needs them)
    return True


def _accepts_anything(rules: list) -> bool:
    return any(isinstance(r.verdict, (ir.Accept, ir.VerdictMap)) for r in rules)


def _is_lo(m) -> bool:
    if isinstance(m, ir.Interface):
        return m.field == "iifname" and not m.negate and m.name == "lo"
    return isinstance(m, ir.FieldMatch) and m.expr in ("meta iif", "meta iifname") and \
        not m.negate and m.op == "eq" and "lo" in m.values


def _icmpv6(r: ir.Rule) -> bool:
    """Can an ICMPv6 neighbour solicitation match `r`?"""
    for m in r.matches:
        if isinstance(m, ir.Proto) and (58 in m.protos) == m.negate:
            return False
        if isinstance(m, ir.Icmp) and (m.family != "ip6" or (
                m.type is not None and (m.type == 135) == m.negate)):
            return False
        if isinstance(m, (ir.Port, ir.TcpFlags, ir.TcpOption)):
            return False
        if isinstance(m, ir.Interface) and m.name == "lo" and not m.negate:
            return False
        if isinstance(m, ir.CtState) and ("UNTRACKED" in m.states) == m.negate:
            return False  # conntrack leaves neighbour discovery untracked
    return True


def check_unused_chains(rs: ir.Ruleset) -> list[Finding]:
    out = []
    for t in rs.tables:
        refs = chain_references(t)
        for c in t.chains:
            if c.base is None and c.name not in refs and c.rules:  # (empty: harmless)
                out.append(Finding("warning", "unused-chain",
                                   f"chain {c.name} is never jumped to: its {len(c.rules)} "
                                   f"rule(s) never run", c.loc))
    return out


def _notes(fn, rs: ir.Ruleset) -> list[Note]:
    got: list[Note] = []
    fn(rs, got.append)
    return got


def check_unreachable(rs: ir.Ruleset) -> list[Finding]:
    """Rules no packet reaches (fwc translate -O removes them)."""
    from fwc.passes.dead import remove_dead_rules
    return [Finding("warning", "unreachable",
                    n.message.removesuffix("; removed") + " (`fwc translate -O` removes it)",
                    n.loc)
            for n in _notes(remove_dead_rules, rs) if n.level == "warning"]


def check_fast_path(rs: ir.Ruleset) -> list[Finding]:
    """Where the ESTABLISHED accept could decide most packets at the first rule, or what keeps
    it from being first."""
    from fwc.passes.fastpath import fast_path
    out = []
    for n in _notes(fast_path, rs):
        msg = n.message.replace("` moved from position", "` can move from position")
        if msg != n.message:
            msg += " (`fwc translate -O` moves it: established packets are then decided by " \
                   "the first rule)"
        out.append(Finding("note", "fast-path", msg, n.loc))
    return out


def check_nft(rs: ir.Ruleset) -> list[Finding]:
    """Constructs `fwc translate` refuses for nftables (it needs exact forms)."""
    from fwc.backends.nft import emit_nft
    try:
        emit_nft(rs)
    except ErrorGroup as g:
        return [Finding("note", "not-nft", e.message, e.loc) for e in g.errors]
    except FwcError as e:
        return [Finding("note", "not-nft", e.message, e.loc)]
    return []


CHECKS = (check_unreachable, check_established, check_host_basics, check_unused_chains,
          check_fast_path, check_nft)


def lint(rs: ir.Ruleset, checks: Optional[Iterable] = None) -> list[Finding]:
    """All findings of `checks` (default: CHECKS) on `rs`, warnings first, each group in
    source order."""
    found: list[Finding] = []
    for check in checks or CHECKS:
        found.extend(check(rs))
    order = {"warning": 0, "note": 1}
    return sorted(found, key=lambda f: (order.get(f.level, 2), f.loc.file, f.loc.line,
                                        f.loc.col, f.code))
