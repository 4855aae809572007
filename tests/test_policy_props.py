"""Random policies (Hypothesis): they compile, every IR rule is located, the iptables-shaped IR
(split per family, one value per rule) means what the inet IR means, and both mean what the
policy says (an independent first-match reading of the resolved rules)."""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwc import ir
from fwc.backends.simulate import simulate
from fwc.errors import FwcSyntaxError
from fwc.packet import cases_from_json
from fwc.passes import optimize
from fwc.policy import compile_full
from fwc.policy.lower import rule_families, split_ruleset
from fwc.policy.resolve import Resolver, read_file

# addresses the kernel harness can route: eth0 side, eth1 side, and the firewall itself
HOSTS4 = ["198.51.100.10", "198.51.100.77", "203.0.113.10", "192.0.2.1"]
HOSTS6 = ["2001:db8:a::10", "2001:db8:a::77", "2001:db8:b::10", "2001:db8:f::1"]
NETS = ["198.51.100.0/24", "198.51.100.64/26", "203.0.113.0/24", "2001:db8:a::/64",
        "2001:db8:b::/64", "192.0.2.0/24"]
SERVICES = ["tcp/22", "tcp/80", "tcp/1000-2000", "udp/53", "ssh", "web", "dns", "mysvc",
            "icmp echo-request", "icmpv6 echo-request", "ping"]
DIRS = {"input": "in", "output": "out", "forward": "fwd"}


@st.composite
def policies(draw):
    lines = ["host h4 = " + draw(st.sampled_from(HOSTS4)),
             "host h46 = " + draw(st.sampled_from(HOSTS4)) + ", "
             + draw(st.sampled_from(HOSTS6)),
             "network n = " + ", ".join(draw(st.lists(st.sampled_from(NETS), min_size=1,
                                                      max_size=3, unique=True))),
             "service mysvc = tcp/8080, udp/5000-5010",
             "zone inside = eth1"]
    addr_pool = ["h4", "h46", "n"] + HOSTS4 + HOSTS6 + NETS
    chains = draw(st.lists(st.sampled_from(list(DIRS)), min_size=1, max_size=3, unique=True))
    for chain in chains:
        policy = draw(st.sampled_from(["accept", "drop"]))
        stateless = " stateless" if draw(st.integers(0, 4)) == 0 else ""
        lines.append(f"{chain} policy {policy}{stateless} {{")
        for _ in range(draw(st.integers(0, 6))):
            action = draw(st.sampled_from(["allow", "drop", "reject"]))
            parts = [action]
            svc = draw(st.one_of(st.none(), st.sampled_from(SERVICES)))
            if svc:
                parts.append(svc)
            for kw in ("from", "to"):
                if draw(st.booleans()):
                    vals = draw(st.lists(st.sampled_from(addr_pool), min_size=1, max_size=2,
                                         unique=True))
                    parts.append(kw + " " + ", ".join(vals))
            if chain != "output" and draw(st.integers(0, 3)) == 0:
                parts.append("iif " + draw(st.sampled_from(["eth0", "inside", "eth+"])))
            if chain != "input" and draw(st.integers(0, 3)) == 0:
                parts.append("oif " + draw(st.sampled_from(["eth0", "inside"])))
            if draw(st.integers(0, 4)) == 0:
                parts.append("state " + draw(st.sampled_from(["new", "new, untracked"])))
            if action == "reject":
                kinds = [None, "admin-prohibited", "no-route"]
                if svc in ("tcp/22", "tcp/80", "ssh", "web"):
                    kinds.append("tcp-reset")
                kind = draw(st.sampled_from(kinds))
                if kind:
                    parts.append("with " + kind)
            if draw(st.integers(0, 5)) == 0:
                parts.append('log "p: "')
            lines.append("  " + " ".join(parts))
        lines.append("}")
    return "\n".join(lines) + "\n"


def compile_or_never(text: str):
    """The result, or None when the policy has a rule that can never match (a located error
    the generator cannot easily avoid: e.g. from an IPv4 host to an IPv6 network)."""
    try:
        return compile_full(text, "rand.policy")
    except FwcSyntaxError as e:
        assert "never match" in e.message, e.format()
        return None


SIDES = {4: {"eth0": ["198.51.100.10", "198.51.100.77"], "eth1": ["203.0.113.10"],
             "local": "192.0.2.1"},
         6: {"eth0": ["2001:db8:a::10", "2001:db8:a::77"], "eth1": ["2001:db8:b::10"],
             "local": "2001:db8:f::1"}}
PROBE_SERVICES = [("tcp", 22), ("tcp", 80), ("tcp", 1500), ("tcp", 8080), ("udp", 53),
                  ("udp", 5005), ("icmp", None)]


def _endpoints(d: str, l3: int) -> list[dict]:
    """Source/destination/interfaces of packets the kernel harness can really send: into the
    firewall from either side, out of it to either side, through it between the sides."""
    s = SIDES[l3]
    remote = [(a, "eth0") for a in s["eth0"]] + [(a, "eth1") for a in s["eth1"]]
    if d == "in":
        return [{"src": a, "dst": s["local"], "iif": i} for a, i in remote]
    if d == "out":
        return [{"src": s["local"], "dst": a, "oif": i} for a, i in remote]
    return [{"src": a, "dst": b, "iif": i, "oif": o}
            for a, i in remote for b, o in remote if i != o]


def probes(text: str) -> list:
    """NEW packets (no setup) in every direction, both families, over the pools."""
    out = []
    for d in DIRS.values():
        for l3 in (4, 6):
            for ends in _endpoints(d, l3):
                for proto, port in PROBE_SERVICES:
                    p = {"dir": d, "l3": l3, **ends}
                    if proto == "icmp":
                        p["proto"] = "icmp" if l3 == 4 else "icmpv6"
                    else:
                        p.update(proto=proto, dport=port)
                    out.append({"name": f"{d} {ends['src']}>{ends['dst']} {proto}/{port}",
                                "probe": p})
    return cases_from_json(out)


# ------------------------------------------------------------------ reading the policy directly


def _in(addr, values) -> bool:
    for v in values:
        if v.version != addr.version:
            continue
        if isinstance(v, ir.AddrRange):
            if v.lo <= addr <= v.hi:
                return True
        elif addr in v:
            return True
    return False


def _iface_ok(name, names) -> bool:
    return name is not None and any(n == name or (n.endswith("+") and name.startswith(n[:-1]))
                                    for n in names)


def _svc_ok(pkt, atoms) -> bool:
    for a in atoms:
        if a.proto != pkt.proto:
            continue
        if a.family is not None:
            if a.icmp_type is None or a.icmp_type == pkt.icmp_type:
                return True
        elif a.ports is None or pkt.dport in a.ports:
            return True
    return False


def policy_verdict(res: Resolver, pkt) -> str:
    """What the policy text says about a NEW packet: first matching rule, else the policy."""
    chain = res.chains.get({"in": "input", "out": "output", "fwd": "forward"}[pkt.dir])
    if chain is None:
        return "ACCEPT"
    for r in chain.rules:
        if r.saddr is not None and not _in(pkt.src, r.saddr):
            continue
        if r.daddr is not None and not _in(pkt.dst, r.daddr):
            continue
        if r.iif is not None and not _iface_ok(pkt.iif, r.iif):
            continue
        if r.oif is not None and not _iface_ok(pkt.oif, r.oif):
            continue
        if r.services is not None and not _svc_ok(pkt, r.services):
            continue
        if r.states is not None and "NEW" not in r.states:
            continue
        return {"accept": "ACCEPT", "drop": "DROP", "reject": "REJECT"}[r.action]
    return chain.policy.upper()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_random_policy_means_what_it_says(text):
    result = compile_or_never(text)
    if result is None:
        return
    lines = text.splitlines()
    rs = result.ruleset
    for c in rs.tables[0].chains:
        for r in c.rules:
            word = lines[r.loc.line - 1].split()[0]
            assert word in ("allow", "drop", "reject", "input", "output", "forward"), word
            assert rule_families(r), r  # no IR rule that can never match
    cases = probes(text)
    inet = simulate(rs, cases)
    split = simulate(split_ruleset(rs), cases)
    # `fwc compile -O`, both targets
    opt = simulate(optimize(rs), cases)
    opt_split = simulate(split_ruleset(optimize(rs, target="iptables")), cases)
    res = Resolver(read_file)
    res.load(text, "rand.policy")
    res.finish()
    for case, a, b, o, p in zip(cases, inet, split, opt, opt_split):
        assert a.verdict == b.verdict == o.verdict == p.verdict, (case.name, a, b, o, p, text)
        assert a.verdict == policy_verdict(res, case.probe), (case.name, a.verdict, text)


def test_generator_reaches_both_families():
    """Guard against a generator that only ever produces one shape of policy."""
    text = ("host h46 = 198.51.100.10, 2001:db8:a::10\n"
            "input policy drop {\n  allow ssh from h46\n}\n")
    rs = compile_full(text, "x").ruleset
    fams = [rule_families(r) for r in rs.tables[0].chains[0].rules[2:]]
    assert fams == [{4}, {6}]
    assert ipaddress.ip_address("198.51.100.10") in ipaddress.ip_network("198.51.100.0/24")
