"""-m cluster: the IR states xt_cluster's options as libxt_cluster checks them, back to iptables
unchanged, to nft only where the hash cannot matter and nft can do its pkt_type rewrite, and
the simulator hashes the connection (or its master) as the kernel does (the kernel side:
tests/kernel/test_cluster_kernel.py)."""

from __future__ import annotations

import ipaddress

import pytest

from fwc import ir
from fwc.backends.iptables import emit_iptables
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import Simulator
from fwc.conntrack.jhash import cluster_node, jhash2
from fwc.errors import ErrorGroup
from fwc.frontends.iptables import parse_iptables_save, parse_iptables_script
from fwc.frontends.nft import parse_nft
from fwc.packet import cases_from_json
from fwc.passes.dead import remove_dead_rules
from fwc.testing.kernel import sim_options

CL = "-m cluster --cluster-total-nodes {} --cluster-local-nodemask {} --cluster-hash-seed 9"


def rules(text: str) -> list[ir.Rule]:
    rs = parse_iptables_script(text)
    return [r for t in rs.tables for c in t.chains for r in c.rules]


def test_options_become_total_mask_seed():
    (r,) = rules("iptables -t mangle -A PREROUTING -m cluster --cluster-total-nodes 3 "
                 "! --cluster-local-node 2 --cluster-hash-seed 0x10\n")
    assert r.matches == (ir.Cluster(3, 0b10, 16, True),)
    (r,) = rules("iptables -A INPUT " + CL.format(5, "0x1f") + "\n")
    assert r.matches == (ir.Cluster(5, 31, 9),) and r.matches[0].every_node


@pytest.mark.parametrize("spec,what", [
    ("--cluster-local-node 1 --cluster-hash-seed 1", "needs --cluster-total-nodes"),
    ("--cluster-total-nodes 2 --cluster-local-node 1", "needs --cluster-hash-seed"),
    ("--cluster-total-nodes 2 --cluster-hash-seed 1", "needs --cluster-local-node or"),
    ("--cluster-total-nodes 2 --cluster-local-node 1 --cluster-local-nodemask 1 "
     "--cluster-hash-seed 1", "cannot be used together"),
    ("--cluster-total-nodes 33 --cluster-local-node 1 --cluster-hash-seed 1", "out of range"),
    ("--cluster-total-nodes 2 --cluster-local-node 3 --cluster-hash-seed 1", "must be <="),
    ("--cluster-total-nodes 2 --cluster-local-nodemask 4 --cluster-hash-seed 1", "too big"),
    ("--cluster-total-nodes 32 --cluster-local-nodemask 33 --cluster-hash-seed 1",
     "out of range"),
    ("--cluster-total-nodes 2 --cluster-local-node 0 --cluster-hash-seed 1", "out of range"),
    ("--cluster-total-nodes 2 --cluster-local-node 1 --cluster-hash-seed 0x100000000",
     "out of range"),
    ("! --cluster-total-nodes 2 --cluster-local-node 1 --cluster-hash-seed 1",
     "cannot be negated"),
])
def test_what_iptables_refuses_is_a_located_syntax_error(spec, what):
    with pytest.raises(ErrorGroup) as e:
        parse_iptables_script(f"iptables -A INPUT -m cluster {spec}\n", "c.sh")
    (err,) = e.value.errors
    assert err.exit_code == 2 and what in err.message and err.loc.line == 1


def test_back_to_iptables_as_iptables_save_writes_it():
    rs = parse_iptables_script("iptables -t mangle -A PREROUTING -i eth1 -m cluster "
                               "--cluster-total-nodes 2 ! --cluster-local-node 1 "
                               "--cluster-hash-seed 0xdeadbeef -j MARK --set-mark 0xffff\n")
    text = emit_iptables(rs)["ip"]
    assert "-m cluster ! --cluster-local-nodemask 0x00000001 --cluster-total-nodes 2 " \
           "--cluster-hash-seed 0xdeadbeef" in text
    back = parse_iptables_save(text, family="ip")
    assert back.tables[0].chain("PREROUTING").rules == rs.tables[0].chain("PREROUTING").rules


def _nft(script: str) -> str:
    return emit_nft(parse_iptables_script(script, "c.sh"))


def _body(text: str, chain: str) -> list[str]:
    lines = text.splitlines()
    i = lines.index(f"\tchain {chain} {{")
    out = []
    for ln in lines[i + 1:]:
        if ln.startswith("\t\ttype "):
            continue
        if ln == "\t}":
            return out
        out.append(ln.strip())
    raise AssertionError(text)


def test_every_node_in_prerouting_is_the_rewrite_then_tracked():
    text = _nft("iptables -t mangle -A PREROUTING -i eth1 " + CL.format(2, 3) + " -j ACCEPT\n"
                "iptables -t mangle -A PREROUTING -i eth2 -m cluster --cluster-total-nodes 1 "
                "! --cluster-local-node 1 --cluster-hash-seed 1 -j DROP\n")
    fix = "ip daddr != 224.0.0.0/4 meta pkttype multicast meta pkttype set host"
    assert _body(text, "PREROUTING") == [
        f'iifname "eth1" {fix}', 'iifname "eth1" ct state established,related,new accept',
        f'iifname "eth2" {fix}']  # negated: it never matches, the rewrite stays
    six = emit_nft(parse_iptables_script("ip6tables -t mangle -A PREROUTING " +
                                         CL.format(1, 1) + "\n"))
    assert "ip6 daddr != ff00::/8 meta pkttype multicast meta pkttype set host" in six


def test_a_stateful_or_pkttype_match_before_it_takes_a_chain_of_its_own():
    text = _nft("iptables -t mangle -A PREROUTING -m limit --limit 1/s " + CL.format(1, 1) +
                " -j DROP\n")
    assert _body(text, "PREROUTING") == ["limit rate 1/second burst 5 packets jump fwc_cluster_1"]
    assert _body(text, "fwc_cluster_1") == [
        "ip daddr != 224.0.0.0/4 meta pkttype multicast meta pkttype set host",
        "ct state established,related,new drop"]


def test_where_the_rewrite_cannot_apply_it_is_left_out():
    """Forwarded packets not sent to the host's MAC are dropped before the forward hook, and
    locally made ones are host: there the match is just 'has a conntrack entry'."""
    text = _nft("iptables -A FORWARD -p tcp " + CL.format(3, 7) + " -j ACCEPT\n"
                "iptables -A OUTPUT -p udp -m cluster --cluster-total-nodes 1 "
                "! --cluster-local-node 1 --cluster-hash-seed 1 -j DROP\n")
    assert _body(text, "FORWARD") == ["ip protocol tcp ct state established,related,new accept"]
    assert _body(text, "OUTPUT") == []  # never matches, nothing evaluated


@pytest.mark.parametrize("script,what", [
    ("iptables -A INPUT " + CL.format(2, 1) + " -j DROP\n", "naming only some of the nodes"),
    ("iptables -A INPUT " + CL.format(2, 3) + " -j DROP\n", "reached from the input hook"),
    ("iptables -t mangle -N c\niptables -t mangle -A c " + CL.format(1, 1) + "\n"
     "iptables -t mangle -A PREROUTING -j c\niptables -t mangle -A FORWARD -j c\n",
     "reached from prerouting and other hooks"),
])
def test_refused_where_nft_cannot_say_it(script, what):
    with pytest.raises(ErrorGroup) as e:
        _nft(script)
    assert all(x.exit_code == 1 for x in e.value.errors)
    assert what in e.value.errors[0].message and e.value.errors[0].loc.file == "c.sh"


def test_jhash2_of_one_word_is_jhash_1word():
    """jhash_1word(a, s) is __jhash_nwords(a, 0, 0, s + JHASH_INITVAL + 4): the same start
    values as jhash2 of one word, then the final mix (computed here from lookup3's steps)."""
    def rol(x, k):
        return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF
    for a, s in ((0, 0), (0x0100000A, 0xDEADBEEF), (0xFFFFFFFF, 7)):
        iv = (s + 0xDEADBEEF + 4) & 0xFFFFFFFF
        x, y, z = (a + iv) & 0xFFFFFFFF, iv, iv
        for p, q, k in ((2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16), (0, 2, 4), (1, 0, 14),
                        (2, 1, 24)):
            v = [x, y, z]
            v[p] = ((v[p] ^ v[q]) - rol(v[q], k)) & 0xFFFFFFFF
            x, y, z = v
        assert jhash2([a], s) == z
    assert jhash2([], 5) == (0xDEADBEEF + 5) & 0xFFFFFFFF


def test_simulator_hashes_the_master_of_an_expected_connection():
    from tests.kernel.test_sim_vs_kernel import C4, S4, ftp_cases, raw, restore
    seed = next(s for s in range(100) if cluster_node(4, int(ipaddress.IPv4Address(C4)), s, 2)
                != cluster_node(4, int(ipaddress.IPv4Address(S4)), s, 2))
    node = {a: cluster_node(4, int(ipaddress.IPv4Address(a)), seed, 2) for a in (C4, S4)}
    for helper in (True, False):
        v4 = (raw("-A PREROUTING -p tcp --dport 21 -j CT --helper ftp") if helper else "") + \
            restore(["-A OUTPUT -p tcp --sport 20 -m cluster --cluster-total-nodes 2 "
                     f"--cluster-local-nodemask {1 << node[S4]} --cluster-hash-seed {seed} -j DROP"])
        sim = Simulator(parse_iptables_save(v4, "f.rules", "ip"), sim_options())
        (case,) = cases_from_json([c for c in ftp_cases("c") if c["name"] == "c-port"])
        res = sim.run_case(case)
        # with the helper the data connection's master (source: the client) is hashed
        assert (res.ct_state, res.verdict) == (("RELATED", "ACCEPT") if helper else
                                               ("NEW", "DROP"))
        whose = f"its master's original source {C4}" if helper else f"its original source {S4}"
        assert any(whose in str(t) for t in res.trace), res.trace


def test_a_later_pkttype_test_is_not_dead_after_a_cluster_rule():
    """The cluster rule rewrites pkt_type even when it does not match, so a pkt_type test
    after it may see another packet than the same test before it."""
    rs = parse_iptables_script(
        "iptables -t mangle -A PREROUTING -m pkttype --pkt-type unicast -j ACCEPT\n"
        "iptables -t mangle -A PREROUTING " + CL.format(1, 1) + " -j ACCEPT\n"
        "iptables -t mangle -A PREROUTING -p udp -m pkttype --pkt-type unicast -j DROP\n")
    out = remove_dead_rules(rs)
    assert len(out.tables[0].chain("PREROUTING").rules) == 3
    plain = parse_iptables_script(
        "iptables -t mangle -A PREROUTING -m pkttype --pkt-type unicast -j ACCEPT\n"
        "iptables -t mangle -A PREROUTING -p tcp -j ACCEPT\n"
        "iptables -t mangle -A PREROUTING -p udp -m pkttype --pkt-type unicast -j DROP\n")
    assert len(remove_dead_rules(plain).tables[0].chain("PREROUTING").rules) == 2
    nft = parse_nft("table ip t {\n chain p {\n  type filter hook prerouting priority 0;\n"
                    "  meta pkttype unicast accept\n  meta pkttype set unicast\n"
                    "  udp dport 1 meta pkttype unicast drop\n }\n}\n", "p.nft")
    assert len(remove_dead_rules(nft).tables[0].chain("p").rules) == 3


def test_nft_jhash_without_a_seed_is_refused_by_the_simulator():
    """The kernel draws a random seed when the rule gives none (nft_jhash_init); with one the
    simulator hashes (tests/kernel/test_jhash_kernel.py checks the values)."""
    from fwc.errors import Unsupported
    text = ("table ip t {{\n chain c {{\n  type filter hook input priority 0;\n"
            "  jhash ip saddr mod 2 {}0 drop\n }}\n}}\n")
    from fwc.packet import cases_from_json
    (probe,) = cases_from_json([{"name": "p", "setup": [], "probe": {
        "dir": "in", "proto": "udp", "src": "198.51.100.7", "dst": "192.0.2.1", "sport": 5,
        "dport": 53}}])
    Simulator(parse_nft(text.format("seed 1 "), "j.nft"), sim_options()).run_case(probe)
    sim = Simulator(parse_nft(text.format(""), "j.nft"), sim_options())
    with pytest.raises(Unsupported, match="without a seed") as e:
        sim.run_case(probe)  # (refused when a packet reaches the rule)
    assert e.value.loc.line == 4
