"""The nft text of a ruleset and the JSON the kernel lists for it (`nft -j list ruleset` in a
throw-away namespace) parse to the same IR; so does the kernel's text listing."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fwc.errors import Unsupported
from fwc.frontends.nft import parse_nft
from fwc.frontends.nft_json import parse_nft_json
from tests.test_nft_frontend_nftpy_data import without_implied_protocols

pytestmark = pytest.mark.kernel

RULESET = """
define lan = { 192.0.2.0/24, 198.51.100.0/24 }
table inet filter {
  set blocked { type ipv4_addr; flags interval; elements = { 203.0.113.0/24 } }
  map ports { type inet_service : verdict; elements = { 22 : accept, 23 : drop } }
  chain input {
    type filter hook input priority filter + 10; policy drop;
    ct state established,related accept
    ct state invalid drop
    iifname "lo" accept
    iifname "eth*" ip saddr $lan tcp dport { 22, 80-90 } counter accept comment "lan"
    ip saddr @blocked drop
    tcp dport vmap @ports
    tcp flags & (syn|ack) == syn log prefix "syn " level info
    meta mark & 0xff == 0x1 jump other
    ip saddr . tcp dport { 192.0.2.4 . 22 } accept
    ip6 saddr 2001:db8::/32 icmpv6 type echo-request limit rate 10/second burst 20 packets accept
    fib daddr type != local drop
    meta l4proto udp udp dport 53 ct original proto-dst 53 accept
    reject with icmpx type admin-prohibited
  }
  chain other { meta mark set meta mark | 0x10; ct mark set meta mark; return; }
}
table ip nat {
  chain post { type nat hook postrouting priority srcnat; oifname "eth1" masquerade random; }
  chain pre { type nat hook prerouting priority dstnat; tcp dport 8080 dnat to 192.0.2.10:80; }
}
"""


def _need_kernel():
    reason = None
    if os.geteuid() != 0:
        reason = "needs root"
    elif not shutil.which("ip") or not shutil.which("nft"):
        reason = "needs ip and nft"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _kernel_listings(text: str, tmp_path: Path) -> tuple[str, str]:
    ns = f"nftf{os.getpid()}"
    src = tmp_path / "rules.nft"
    src.write_text(text)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        run = lambda *a: subprocess.run(["ip", "netns", "exec", ns, "nft", *a], check=True,
                                        capture_output=True, text=True).stdout
        run("-f", str(src))
        return run("-j", "list", "ruleset"), run("list", "ruleset")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_text_and_kernel_json_give_the_same_ir(tmp_path):
    _need_kernel()
    as_json, as_text = _kernel_listings(RULESET, tmp_path)
    ours = without_implied_protocols(parse_nft(RULESET, "rules.nft"))
    assert without_implied_protocols(parse_nft_json(as_json, "kernel.json")) == ours
    assert without_implied_protocols(parse_nft(as_text, "kernel.nft")) == ours
    # locations point into the JSON text
    rule = parse_nft_json(as_json, "kernel.json").table("inet", "filter").chain("input").rules[0]
    assert rule.loc.file == "kernel.json" and rule.loc.line >= 1 and rule.loc.col > 1


def _has_element_statements(rs) -> bool:
    return any(getattr(m, "element_stmts", ()) and any(m.element_stmts)
               for t in rs.tables for c in t.chains for r in c.rules
               for m in (*r.matches, r.verdict) if m is not None)


def test_nft_optimize_expected_dumps_load_and_list_back(tmp_path):
    """Each parseable nft-optimize dump, loaded into a kernel, lists back as JSON with the same IR."""
    _need_kernel()
    corpus = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "nft-optimize" / "expected"
    if not corpus.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("corpus missing")
        pytest.skip("../shared corpus not available")
    compared = 0
    for p in sorted(corpus.glob("*.nft")):
        try:
            ours = parse_nft(p.read_text(), str(p))
        except Unsupported:
            continue
        if not ours.tables:
            continue
        if _has_element_statements(ours):
            continue  # nft 1.0.6 turns `{ x counter }` into `== x` and drops the counter on load
        try:
            as_json, _ = _kernel_listings(p.read_text(), tmp_path)
        except subprocess.CalledProcessError:
            continue  # nft 1.0.6 does not load some newer dumps
        # nft drops protocol matches implied by port matches when listing
        assert without_implied_protocols(parse_nft_json(as_json, p.name)) == \
            without_implied_protocols(ours), p.name
        compared += 1
    assert compared >= 5


SETS = """
table inet t {
  set seen { type ipv4_addr; size 2; flags dynamic,timeout; timeout 60s; gc-interval 30s; }
  set cnt { type ipv4_addr; counter; elements = { 10.0.0.1 } }
  set el { type ipv4_addr; flags timeout; elements = { 10.0.0.2 timeout 90s, 10.0.0.3 } }
  chain input {
    type filter hook input priority filter; policy drop;
    ip saddr @cnt accept
    ip saddr @el accept
    tcp dport 22 add @seen { ip saddr } accept
    tcp dport 23 add @seen { ip saddr timeout 2s } accept
    tcp dport 24 update @seen { ip saddr timeout 1m } accept
  }
}
"""


def _without_expiry(rs):
    """The listing's `expires` (time left) moves on; the rest of an element's timeout stays."""
    import attrs
    from fwc import ir
    return attrs.evolve(rs, tables=tuple(attrs.evolve(t, sets=tuple(
        attrs.evolve(s, element_timeouts=tuple((a, None) for a, _ in s.element_timeouts))
        if isinstance(s, ir.NamedSet) else s for s in t.sets)) for t in rs.tables))


def test_set_size_timeouts_and_counters_read_the_same_from_text_and_json(tmp_path):
    _need_kernel()
    as_json, as_text = _kernel_listings(SETS, tmp_path)
    ours = _without_expiry(parse_nft(SETS, "sets.nft"))
    from_json = _without_expiry(parse_nft_json(as_json, "kernel.json"))
    assert from_json == ours
    assert _without_expiry(parse_nft(as_text, "kernel.nft")) == ours
    el = next(s for s in from_json.tables[0].sets if s.name == "el")
    assert el.element_timeouts == (("1m30s", None), (None, None))
    assert next(s for s in from_json.tables[0].sets if s.name == "seen").size == 2
    # an element's own timeout in a set statement is kept (JSON: {"elem": {"timeout": 2}})
    rules = from_json.tables[0].chain("input").rules
    assert [r.statements[0].timeout for r in rules[2:]] == [None, "2s", "1m"]


COUNTERS = """
table inet t {
  counter ssh { packets 5 bytes 100 }
  counter web { }
  chain input {
    type filter hook input priority filter; policy accept;
    tcp dport 22 counter name ssh accept
    tcp dport { 80, 443 } counter name "web" accept
  }
}
"""


def test_named_counters_read_the_same_from_text_and_json_and_load_back(tmp_path):
    _need_kernel()
    from fwc.backends.nft import emit_nft
    as_json, as_text = _kernel_listings(COUNTERS, tmp_path)
    ours = parse_nft(COUNTERS, "counters.nft")
    assert parse_nft_json(as_json, "kernel.json") == ours
    assert parse_nft(as_text, "kernel.nft") == ours
    _, again = _kernel_listings(emit_nft(ours), tmp_path)
    assert again == as_text


OBJECTS_AND_STATEMENTS = """table ip t {
	ct helper ftp-std {
		type "ftp" protocol tcp
		l3proto ip
	}

	chain pre {
		type filter hook prerouting priority mangle; policy accept;
		meta l4proto tcp tproxy to 127.0.0.1:8080 meta mark set 1 accept
		tcp dport 21 ct helper set "ftp-std"
		jhash ip saddr mod 2 seed 0xdeadbeef vmap { 0 : accept, 1 : drop }
	}

	chain in {
		type filter hook input priority filter; policy accept;
		tcp dport 80 synproxy mss 1460 wscale 7 timestamp sack-perm
	}
}
table inet u {
	chain pre {
		type filter hook prerouting priority mangle; policy accept;
		meta l4proto tcp tproxy ip to 127.0.0.1:8080
		meta l4proto tcp tproxy ip6 to [::1]:8080
	}
}
"""


def test_tproxy_synproxy_jhash_and_ct_helper_objects_read_the_same_from_json(tmp_path):
    """nft's JSON for what the text front end reads: `tproxy` (with and without a family),
    `synproxy`, `jhash` (its seed in hex whichever way it was written), `ct helper` objects."""
    _need_kernel()
    as_json, as_text = _kernel_listings(OBJECTS_AND_STATEMENTS, tmp_path)
    ours = parse_nft(OBJECTS_AND_STATEMENTS, "objs.nft")

    def body(rs):
        return [(t.family, t.name,
                 [(c.name, [(r.matches, r.statements, r.verdict) for r in c.rules])
                  for c in t.chains]) for t in rs.tables]
    assert body(parse_nft_json(as_json, "kernel.json")) == body(ours)
    assert body(parse_nft(as_text, "kernel.nft")) == body(ours)
    decimal = OBJECTS_AND_STATEMENTS.replace("seed 0xdeadbeef", "seed 3735928559")
    assert body(parse_nft(decimal, "dec.nft")) == body(ours)
