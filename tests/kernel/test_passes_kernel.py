"""Issue: `fwc translate -O` output means the same in the kernel as the unoptimised output.

For every real-world ruleset fwc can write as nft, and for synthetic rulesets built to exercise
each pass (fast path past `iifname lo accept`, blocked by a blocklist, set merging, dead rules,
inlined chains), the unoptimised and optimised nft texts are loaded side by side in the kernel
harness and must give every generated case the same verdict and ct state; the simulator must
also give both the same results (it defines the meaning).
"""

from __future__ import annotations

import pytest

from fwc import ir
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import SimOptions, simulate
from fwc.errors import ErrorGroup, Unsupported
from fwc.frontends import load_ruleset
from fwc.packet import cases_from_json
from fwc.passes import optimize
from fwc.testing.compare import compare_kernel
from fwc.testing.gen import generate_cases, ruleset_ifaces
from fwc.testing.kernel import KernelHarness
from tests.corpus import REPO, corpus_id, real_world_files

pytestmark = pytest.mark.kernel
CORPUS = real_world_files() + sorted((REPO / "examples").glob("*.rules"))
CASES = 200
# token buckets refill with the clock: the packet on which a bucket runs dry can differ by run
RATE_LIMITED_TOLERANCE = {"net-network/configs_serverfault/795234.txt": 3}

SYNTHETIC = {
    "host": """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:services - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -s 198.51.100.77/32 -j DROP
-A INPUT -s 198.51.100.78/32 -j DROP
-A INPUT -s 203.0.113.0/28 -j DROP
-A INPUT -m conntrack --ctstate INVALID -j DROP
-A INPUT -p icmp --icmp-type echo-request -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -j services
-A INPUT -p tcp --dport 22 -j ACCEPT
-A services -p tcp --dport 22 -s 198.51.100.0/24 -j ACCEPT
-A services -p tcp --dport 80 -j ACCEPT
-A services -p tcp --dport 443 -j ACCEPT
-A services -p udp --dport 53 -j ACCEPT
-A services -p tcp --dport 25 -j REJECT --reject-with tcp-reset
-A services -p tcp --dport 443 -j ACCEPT
-A OUTPUT -m conntrack --ctstate NEW -p tcp --dport 25 -j REJECT
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i eth0 -o eth1 -p tcp --dport 8080 -j ACCEPT
-A FORWARD -i eth0 -o eth1 -p tcp --dport 8443 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
""",
}


def _blocklist(n: int) -> str:
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f"-A INPUT -s 198.51.{100 + i // 256 % 2}.{i % 256}/32 -j DROP" for i in range(n)]
    lines += ["-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
              "-A INPUT -p tcp --dport 22 -j ACCEPT", "-A INPUT -j DROP", "COMMIT", ""]
    return "\n".join(lines)


SYNTHETIC["blocklist"] = _blocklist(300)
# the lookups pass: verdict maps (dispatch on the interface, protocol . port), concatenated sets
# (interface pairs with address pairs, ranges included), single-field icmp and mark sets
# tidy, conditional fast-path copy and ct split: a trivial jump, a final return, complements,
# a fast path copied before a jump and excluding a loopback-address reject, a mangle chain whose
# established packets skip the `ct state new` rules
SYNTHETIC["tidy-ctsplit"] = """*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p icmp -j MARK --set-xmark 0x2/0xffffffff
-A PREROUTING -m conntrack --ctstate NEW -j MARK --set-xmark 0x2/0xffffffff
-A PREROUTING -d 192.0.2.1/32 -m conntrack --ctstate NEW -j MARK --set-xmark 0x1/0xffffffff
-A PREROUTING -d 203.0.113.1/32 -m conntrack --ctstate NEW -j MARK --set-xmark 0x3/0xffffffff
-A PREROUTING -p udp -j MARK --set-xmark 0x4/0xffffffff
-A PREROUTING -m mark ! --mark 0x0 -j CONNMARK --save-mark
-A PREROUTING -m connmark --mark 0x1 -j CONNMARK --restore-mark
-A PREROUTING -m connmark --mark 0x2 -j CONNMARK --restore-mark
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ok - [0:0]
:block - [0:0]
:iso - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT ! -i lo -d 127.0.0.0/8 -j REJECT
-A INPUT -m mark --mark 0x1 -j ok
-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -j iso
-A FORWARD -i eth0 -o eth1 -p tcp --dport 80 -j ACCEPT
-A FORWARD -i eth0 ! -o eth1 -p tcp --dport 80 -j ACCEPT
-A FORWARD -s 198.51.100.0/25 -j DROP
-A FORWARD -j block
-A ok -j ACCEPT
-A iso -i eth1 -o eth0 -p udp -j DROP
-A iso -j RETURN
-A block -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A block -m conntrack --ctstate NEW -i eth1 -j ACCEPT
-A block -j DROP
COMMIT
"""
SYNTHETIC["lookups"] = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:from0 - [0:0]
:from1 - [0:0]
-A INPUT -i eth0 -j from0
-A INPUT -i eth1 -j from1
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
-A INPUT -p udp --dport 53 -j ACCEPT
-A INPUT -p tcp --dport 23 -j DROP
-A INPUT -p udp --dport 123 -j RETURN
-A INPUT -p tcp --dport 80 -j ACCEPT
-A INPUT -p icmp --icmp-type 8 -j ACCEPT
-A INPUT -p icmp --icmp-type 0 -j ACCEPT
-A INPUT -p icmp --icmp-type 3 -j ACCEPT
-A from0 -s 198.51.100.0/25 -p tcp --dport 443 -j ACCEPT
-A from0 -s 198.51.100.128/25 -p udp --dport 443 -j DROP
-A from0 -m mark --mark 0x1 -j ACCEPT
-A from0 -m mark --mark 0x2 -j ACCEPT
-A from1 -s 203.0.113.0/28 -j DROP
-A from1 -s 203.0.113.16/28 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i eth0 -o eth1 -s 198.51.100.10/32 -d 203.0.113.5/32 -j ACCEPT
-A FORWARD -i eth0 -o eth1 -s 198.51.100.11/32 -d 203.0.113.0/28 -j ACCEPT
-A FORWARD -i eth0 -o eth1 -s 198.51.100.12/31 -d 203.0.113.5/32 -j ACCEPT
-A FORWARD -i eth1 -o eth0 -s 203.0.113.5/32 -d 198.51.100.10/32 -j ACCEPT
-A FORWARD -i eth1 -o eth0 -p tcp --dport 22 -j ACCEPT
-A FORWARD -i eth0 -o eth1 -p udp --dport 53 -j ACCEPT
COMMIT
"""


# lookups across rules in between: members that move up past disjoint rules (another
# interface) or past accepts (the same outcome), and members that must stay put because the
# rule in between decides some of their packets (a reject of tcp/23, a drop of eth1's traffic)
SYNTHETIC["lookups-apart"] = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:from0 - [0:0]
-A INPUT -i eth0 -j from0
-A INPUT -i eth1 -p udp --dport 53 -j ACCEPT
-A INPUT -i eth1 -p tcp --dport 22 -j DROP
-A INPUT -i lo -j ACCEPT
-A INPUT -i eth1 -p tcp --dport 80 -j ACCEPT
-A INPUT -s 198.51.100.0/25 -d 192.0.2.1/32 -j ACCEPT
-A INPUT -p tcp --dport 25 -j ACCEPT
-A INPUT -s 203.0.113.0/28 -d 192.0.2.2/32 -j ACCEPT
-A INPUT -p tcp --dport 23 -j REJECT --reject-with tcp-reset
-A INPUT -s 203.0.113.0/28 -d 192.0.2.3/32 -j ACCEPT
-A INPUT -p icmp --icmp-type 8 -j ACCEPT
-A INPUT -s 198.51.100.128/25 -d 192.0.2.1/32 -j ACCEPT
-A from0 -p tcp --dport 443 -j ACCEPT
-A from0 -p tcp --dport 22 -j DROP
-A FORWARD -i eth0 -o eth1 -p tcp --dport 80 -j ACCEPT
-A FORWARD -i eth1 -o eth0 -j DROP
-A FORWARD -i eth0 -o eth1 -p udp --dport 53 -j DROP
-A FORWARD -i eth0 -o eth1 -p tcp --dport 8080 -j REJECT
-A FORWARD -i eth0 -o eth1 -p tcp --dport 443 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"""

# packets the generator rarely builds, each telling a wrong move apart from a right one
WITNESSES = {"lookups-apart": [
    {"name": f"w{i}", "probe": dict(dir="in", iif=iif, src=src, dst=dst, proto=proto,
                                    dport=dport)}
    for i, (iif, src, dst, proto, dport) in enumerate([
        ("eth1", "203.0.113.5", "192.0.2.3", "tcp", 23),   # the reject decides it first
        ("eth1", "203.0.113.5", "192.0.2.3", "udp", 23),
        ("eth1", "203.0.113.5", "192.0.2.2", "tcp", 23),   # a moved member accepts it first
        ("eth0", "198.51.100.200", "192.0.2.1", "tcp", 23),
        ("eth0", "198.51.100.200", "192.0.2.1", "udp", 5000),
        ("eth1", "203.0.113.5", "192.0.2.1", "tcp", 22)])]}


def test_lookups_apart_case_moves_members():
    """The `lookups-apart` case exercises what it is meant to: merges of members apart, and
    members left alone behind a rule that decides some of their packets."""
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "lookups-apart.rules"
        path.write_text(SYNTHETIC["lookups-apart"])
        rs = load_ruleset(str(path))
    notes = []
    out = optimize(rs, explain=notes.append)
    moved = [n.message for n in notes if n.pass_name == "lookups" and "moved up" in n.message]
    assert any("chain INPUT" in m for m in moved) and any("chain FORWARD" in m for m in moved)
    text = emit_nft(out)
    # 203.0.113.0/28 -> 192.0.2.3 stays behind the tcp/23 reject; 8080's reject is no vmap verdict
    assert text.index("tcp dport 23 reject") < text.index("203.0.113.0/28 . 192.0.2.3")
    assert "tcp dport 8080 reject" in text


def _check(rs: ir.Ruleset, key: str, tolerance: int = 0, extra=()) -> None:
    try:
        plain = emit_nft(rs)
    except (ErrorGroup, Unsupported):
        # one of the rulesets fwc refuses to write as nft (test_corpus_kernel): -O must not
        # make it expressible by losing the refused rule
        from tests.kernel.test_corpus_kernel import REFUSED
        assert key in REFUSED, f"{key}: refused by the nft backend, but not a known refusal"
        with pytest.raises((ErrorGroup, Unsupported)):
            emit_nft(optimize(rs))
        return
    opt_rs = optimize(rs)
    optimised = emit_nft(opt_rs)
    assert optimised != plain or opt_rs == rs
    if optimised == plain:
        return  # the same text means the same; a kernel run would only measure timing noise
    ifaces = tuple(dict.fromkeys((ruleset_ifaces(rs) or ()) + ("eth0", "eth1")))[:2]
    cases = generate_cases(rs, CASES, seed=11, ifaces=ifaces) + cases_from_json(list(extra))
    with KernelHarness(ifaces=ifaces) as h:
        for name in sorted({s.name for t in rs.tables for s in t.sets
                            if isinstance(s, ir.ExternalSet)}):
            fam = next(s.family for t in rs.tables for s in t.sets if s.name == name)
            h.exec("ipset", "create", name, "hash:net" + (" family inet6" if fam == "ip6" else ""))
        diffs = compare_kernel(("nft", plain), ("nft", optimised), cases, h)
    detail = "\n".join(f"{c.name}: plain {a.verdict}/{a.ct_state} -O {b.verdict}/{b.ct_state} "
                       f"probe={c.probe}" for c, a, b in diffs[:5])
    assert len(diffs) <= tolerance, f"{len(diffs)} of {len(cases)} cases differ:\n{detail}"
    try:
        # without the decision cache: it does not key on the fields a verdict map reads
        opts = SimOptions(cache=False)
        sim_plain, sim_opt = simulate(rs, cases, opts), simulate(opt_rs, cases, opts)
    except Unsupported:
        return  # the simulator's own limits are tested in its suite
    sim_diff = [(c.name, a.verdict, b.verdict) for c, a, b in zip(cases, sim_plain, sim_opt)
                if (a.verdict, a.ct_state) != (b.verdict, b.ct_state)]
    assert sim_diff == [], f"the simulator tells plain and -O apart: {sim_diff[:5]}"


@pytest.mark.parametrize("path", CORPUS, ids=[corpus_id(p) for p in CORPUS])
def test_optimised_corpus_means_the_same(path, kernel_ok):
    key = corpus_id(path)
    _check(load_ruleset(str(path)), key, RATE_LIMITED_TOLERANCE.get(key, 0))


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_optimised_synthetic_means_the_same(name, kernel_ok, tmp_path):
    path = tmp_path / f"{name}.rules"
    path.write_text(SYNTHETIC[name])
    _check(load_ruleset(str(path)), name, extra=WITNESSES.get(name, ()))
