"""Compiled policies in the real kernel: the nft output loads, and for generated packets the
kernel's verdicts under the nft output and under the iptables output agree with
`fwc simulate` on the policy's IR."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from fwc import ir
from fwc.backends.simulate import simulate
from fwc.commands.compile import render
from fwc.packet import cases_from_json
from fwc.passes import optimize
from fwc.policy import compile_full, compile_policy_file
from fwc.testing.compare import differs, kernel_verdicts
from tests.test_policy_props import compile_or_never, policies, probes

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.policy"))
SIDE = {  # an address on each side of the harness's firewall, per family
    ("eth0", 4): "198.51.100.10", ("eth1", 4): "203.0.113.10",
    ("eth0", 6): "2001:db8:a::10", ("eth1", 6): "2001:db8:b::10",
}
LOCAL = {4: "192.0.2.1", 6: "2001:db8:f::1"}
ND_TYPES = range(133, 138)  # neighbour discovery: the kernel acts on these itself


def _values(rs: ir.Ruleset, hook: str):
    """Ports, ICMP types and addresses the rules of one filter hook mention."""
    ports = {"tcp": {22, 80, 5}, "udp": {53}}
    icmp = {4: {8}, 6: {128}}
    addrs: dict = {"saddr": set(), "daddr": set()}
    for c in rs.tables[0].chains:
        if c.base is None or c.base.hook != hook or c.base.type != "filter":
            continue
        for r in c.rules:
            for m in r.matches:
                if isinstance(m, ir.Port) and m.proto in ports:
                    for rg in m.ranges:
                        ports[m.proto] |= {rg.lo, rg.hi, max(rg.lo - 1, 1), min(rg.hi + 1, 65535)}
                elif isinstance(m, ir.Icmp) and m.type is not None and m.type not in ND_TYPES:
                    icmp[4 if m.family == "ip" else 6].add(m.type)
                elif isinstance(m, ir.Address):
                    for v in m.values:
                        first = v.lo if isinstance(v, ir.AddrRange) else v.network_address
                        if v.version == 4 and first == ipaddress.ip_address("0.0.0.0"):
                            continue
                        addrs[m.field].add(first + (1 if not isinstance(v, ir.AddrRange) and
                                                    v.num_addresses > 2 else 0))
    return ports, icmp, addrs


def example_cases(rs: ir.Ruleset) -> list:
    out = []

    def add(name, probe, setup=()):
        out.append({"name": name, "setup": list(setup), "probe": probe})

    for hook, d in (("input", "in"), ("output", "out"), ("forward", "fwd")):
        ports, icmp, addrs = _values(rs, hook)
        for l3 in (4, 6):
            sides = [("eth0", "eth1"), ("eth1", "eth0")] if d == "fwd" else [("eth0", "eth0")]
            for iif, oif in sides:
                src = SIDE[(iif, l3)] if d != "out" else LOCAL[l3]
                dst = LOCAL[l3] if d == "in" else SIDE[(oif, l3)]
                base = {"dir": d, "l3": l3, "src": src, "dst": dst}
                if d == "fwd":
                    base.update(iif=iif, oif=oif)
                for proto, ps in ports.items():
                    for p in sorted(ps):
                        add(f"{d}{l3} {iif} {proto}/{p}", {**base, "proto": proto, "dport": p})
                for t in sorted(icmp[l3])[:2]:  # few echo probes: rate limits stay unspent
                    add(f"{d}{l3} {iif} icmp {t}",
                        {**base, "proto": "icmp" if l3 == 4 else "icmpv6", "icmp_type": t})
                for field, field_addrs in addrs.items():
                    for a in sorted(a for a in field_addrs if a.version == l3):
                        if d == "fwd" and field == "saddr" and str(a) == LOCAL[l3]:
                            continue
                        probe = {**base, "src" if field == "saddr" else "dst": str(a)}
                        if d == "fwd" and field == "daddr":
                            probe["oif"] = "eth1" if a in ipaddress.ip_network(
                                "203.0.113.0/24" if l3 == 4 else "2001:db8:b::/64") else "eth0"
                        for proto, p in (("tcp", 22), ("tcp", 80), ("tcp", 443), ("udp", 53),
                                         ("tcp", 9100), ("tcp", 873), ("tcp", 3306)):
                            add(f"{d}{l3} {field}={a} {proto}/{p}",
                                {**probe, "proto": proto, "dport": p})
            # a reply to a connection the other side opened: the stateful fast path
            if d == "in":
                add(f"in{l3} reply", {"dir": "in", "l3": l3, "src": SIDE[("eth0", l3)],
                                      "dst": LOCAL[l3], "sport": 443, "dport": 40000,
                                      "flags": "SA"},
                    [{"dir": "out", "l3": l3, "src": LOCAL[l3], "dst": SIDE[("eth0", l3)],
                      "sport": 40000, "dport": 443}])
            if d == "out":
                add(f"out{l3} reply", {"dir": "out", "l3": l3, "src": LOCAL[l3],
                                       "dst": SIDE[("eth0", l3)], "sport": 22, "dport": 40000,
                                       "flags": "SA"},
                    [{"dir": "in", "l3": l3, "src": SIDE[("eth0", l3)], "dst": LOCAL[l3],
                      "sport": 40000, "dport": 22}])
    return cases_from_json(out)


def ftp_cases() -> list:
    """A passive FTP data connection is RELATED only when the ftp helper saw the 227 reply."""
    client, server = "198.51.100.10", "192.0.2.1"
    ctl = [{"dir": "in", "src": client, "dst": server, "sport": 40000, "dport": 21},
           {"dir": "out", "src": server, "dst": client, "sport": 21, "dport": 40000,
            "flags": "SA"},
           {"dir": "in", "src": client, "dst": server, "sport": 40000, "dport": 21,
            "flags": "A"},
           # the helper parses only segments that start a line it has seen begin: the banner
           {"dir": "out", "src": server, "dst": client, "sport": 21, "dport": 40000,
            "flags": "PA", "payload": "220 ready\\r\\n"},
           {"dir": "in", "src": client, "dst": server, "sport": 40000, "dport": 21,
            "flags": "PA", "payload": "PASV\\r\\n"},
           {"dir": "out", "src": server, "dst": client, "sport": 21, "dport": 40000,
            "flags": "PA", "payload": "227 Entering Passive Mode (192,0,2,1,195,80).\\r\\n"}]
    return cases_from_json([
        {"name": "ftp data (announced port)", "setup": ctl,
         "probe": {"dir": "in", "src": client, "dst": server, "sport": 40001, "dport": 50000}},
        {"name": "ftp data (other port)", "setup": ctl,
         "probe": {"dir": "in", "src": client, "dst": server, "sport": 40001, "dport": 50001}},
        {"name": "no control connection",
         "probe": {"dir": "in", "src": client, "dst": server, "sport": 40001, "dport": 50000}},
    ])


def dnat_cases() -> list:
    """Port forwarding on the nat router: to the firewall's wan address, out to the web host."""
    return cases_from_json([
        {"name": "forwarded 8080", "probe": {"dir": "fwd", "src": "198.51.100.10",
                                             "dst": "192.0.2.1", "dport": 8080,
                                             "iif": "eth0", "oif": "eth1"}},
        {"name": "not forwarded 8081", "probe": {"dir": "fwd", "src": "198.51.100.10",
                                                 "dst": "203.0.113.10", "dport": 8081,
                                                 "iif": "eth0", "oif": "eth1"}},
        {"name": "lan to wan masqueraded", "probe": {"dir": "fwd", "src": "203.0.113.10",
                                                     "dst": "198.51.100.10", "dport": 443,
                                                     "iif": "eth1", "oif": "eth0"}},
    ])


def loaders(rs: ir.Ruleset, optimised: bool = False):
    """nft and iptables outputs; `optimised`: as `fwc compile -O` writes them."""
    nft = render(optimize(rs) if optimised else rs, "nft")[None]
    ipt = render(optimize(rs, target="iptables") if optimised else rs, "iptables")
    return ("nft", nft), ("iptables", ipt.get("ip"), ipt.get("ip6"))


def check_agreement(harness, rs, cases, label: str, optimised: bool = False) -> int:
    """Assert kernel(nft) == kernel(iptables) == simulate(rs); returns the number of cases."""
    sim = simulate(rs, cases)
    nft_loader, ipt_loader = loaders(rs, optimised)
    k_nft = kernel_verdicts(nft_loader, cases, harness)
    k_ipt = kernel_verdicts(ipt_loader, cases, harness)
    bad = []
    for case, s, a, b in zip(cases, sim, k_nft, k_ipt):
        if differs(s, a) or differs(s, b):
            bad.append(f"{case.name}: simulate {s.verdict}/{s.ct_state}, nft {a.verdict}/"
                       f"{a.ct_state}, iptables {b.verdict}/{b.ct_state}")
    assert not bad, f"{label}:\n" + "\n".join(bad) + "\n" + nft_loader[1]
    return len(cases)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_nft_loads(kernel_module, path):
    nft_loader, ipt_loader = loaders(compile_policy_file(str(path)).ruleset)
    kernel_module.load_nft(nft_loader[1])
    listing = kernel_module.nft_list()
    assert "table inet fwc" in listing
    kernel_module.load_iptables(ipt_loader[1], ipt_loader[2])


def without_nat(text: str) -> str:
    """The policy with its nat block removed.  The harness recognises a forwarded packet by its
    addresses, so it cannot see a translated one come out: NAT is checked through conntrack
    (test_nat_router_translations), the filter verdicts here."""
    out, skip = [], False
    for line in text.splitlines():
        if line.startswith("nat {"):
            skip = True
        elif skip and line.strip() == "}":
            skip = False
        elif not skip:
            out.append(line)
    assert not skip
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("optimised", [False, True], ids=["plain", "-O"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_kernel_agrees_with_simulate(kernel_module, path, optimised):
    text = path.read_text()
    if "nat {" in text:
        text = without_nat(text)
        assert "nat {" not in text
    rs = compile_full(text, str(path)).ruleset
    cases = example_cases(rs)
    if path.stem == "ftp-server":
        cases += ftp_cases()
    if optimised:  # the optimiser changes this text: the kernel sees another ruleset
        assert loaders(rs, True)[0] != loaders(rs)[0]
    n = check_agreement(kernel_module, rs, cases, path.stem, optimised)
    assert n >= 20


def _conntrack_lines(harness) -> list[str]:
    p = harness.exec("conntrack", "-L")
    assert p.returncode == 0, p.stderr
    return [line for line in p.stdout.splitlines() if line.startswith(("tcp", "udp"))]


def test_nat_router_translations(kernel_module):
    """dnat and masquerade of nat-router.policy really translate, under both outputs, and the
    simulator lets the same packets through."""
    rs = compile_policy_file(str(ROOT / "examples/nat-router.policy")).ruleset
    cases = dnat_cases()
    sim = simulate(rs, cases)
    assert [r.verdict for r in sim] == ["ACCEPT", "DROP", "ACCEPT"]
    expect = [
        # port 8080 on the firewall -> the web server's port 80
        ("dport=8080", "src=203.0.113.10", "sport=80"),
        None,  # not forwarded: dropped in forward, no confirmed entry
        # the LAN host's replies come back to the firewall's wan address
        ("src=203.0.113.10", "dst=198.51.100.10", "dport=443", "dst=192.0.2.1"),
    ]
    for loader in loaders(rs):
        for case, want in zip(cases, expect):
            kernel_verdicts(loader, [case], kernel_module)
            lines = _conntrack_lines(kernel_module)
            if want is None:
                assert not lines, (loader[0], case.name, lines)
            else:
                assert any(all(w in line for w in want) for line in lines), \
                    (loader[0], case.name, lines)


def test_ftp_helper_makes_data_connection_related(kernel_module):
    rs = compile_policy_file(str(ROOT / "examples/ftp-server.policy")).ruleset
    nft_loader, ipt_loader = loaders(rs)
    for loader in (nft_loader, ipt_loader):
        res = kernel_verdicts(loader, ftp_cases(), kernel_module)
        assert [(r.verdict, r.ct_state) for r in res] == [
            ("ACCEPT", "RELATED"), ("DROP", "NEW"), ("DROP", "NEW")], loader[0]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(policies())
def test_random_policies_nft_and_iptables_agree_in_kernel(kernel_module, text):
    result = compile_or_never(text)
    if result is None:
        return
    check_agreement(kernel_module, result.ruleset, probes(text), text)


def test_a_rate_is_one_bucket_per_family_in_every_output(kernel_module):
    """`allow ssh rate 1/minute burst 2` keeps one bucket per family (docs/policy.md):
    iptables and ip6tables cannot share one, so the nft output gets one rule per family too
    (it had one inet rule, whose bucket IPv4 packets emptied for IPv6 ones)."""
    rs = compile_full("input policy drop {\n  allow ssh rate 1/minute burst 2\n}\n",
                      "rate.policy").ruleset
    syn = {"dir": "in", "proto": "tcp", "sport": 40000, "dport": 22, "flags": "S"}
    v4 = dict(src="198.51.100.7", dst="192.0.2.1")
    v6 = dict(src="2001:db8:a::7", dst="2001:db8:f::1")
    cases = cases_from_json([
        {"name": "v4", "setup": [dict(syn, **v4)], "probe": dict(syn, sport=40001, **v4)},
        {"name": "v6", "probe": dict(syn, **v6)}])
    kernel_module.prepare(cases)
    assert check_agreement(kernel_module, rs, cases, "rate") == 2
    assert [v.verdict for v in kernel_verdicts(loaders(rs)[0], cases, kernel_module)] == \
        ["ACCEPT", "ACCEPT"]
