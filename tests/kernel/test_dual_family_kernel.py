"""One restore file for both iptables-restore and ip6tables-restore: `-4` rules are for the
first, `-6` rules for the second, the others for both.  fwc reads such a file (without
--family) as both families; the kernel, given the file through both restore tools, is the judge."""

from __future__ import annotations

import pytest

from fwc import emit_nft, load
from fwc.packet import cases_from_json
from fwc.testing.compare import compare_kernel

pytestmark = pytest.mark.kernel

DUAL = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-4 -A INPUT -p icmp -j ACCEPT
-6 -A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -4 -p tcp --dport 22 -j ACCEPT
-6 -A INPUT -s 2001:db8:a::/48 -p tcp --dport 80 -j ACCEPT
-A INPUT -p udp --dport 53 -j ACCEPT
-6 -A INPUT -p tcp --dport 443 -j REJECT
COMMIT
"""


def _cases():
    out = []
    for v6, src, dst in ((False, "198.51.100.7", "192.0.2.1"), (True, "2001:db8:a::7", "2001:db8:f::1")):
        for proto, port in (("tcp", 22), ("tcp", 80), ("tcp", 443), ("udp", 53), ("udp", 54)):
            out.append({"name": f"{'v6' if v6 else 'v4'}-{proto}{port}",
                        "probe": {"dir": "in", "proto": proto, "src": src, "dst": dst,
                                  "dport": port}})
        out.append({"name": f"{'v6' if v6 else 'v4'}-ping",
                    "probe": {"dir": "in", "proto": "icmpv6" if v6 else "icmp", "src": src,
                              "dst": dst}})
        out.append({"name": f"{'v6' if v6 else 'v4'}-reply",
                    "setup": [{"dir": "out", "proto": "tcp", "src": dst, "dst": src,
                               "sport": 41000, "dport": 443}],
                    "probe": {"dir": "in", "proto": "tcp", "src": src, "dst": dst,
                              "sport": 443, "dport": 41000, "flags": "SA"}})
    return cases_from_json(out)


def test_dual_family_file_means_what_both_restore_tools_make_of_it(kernel_ok, tmp_path):
    path = tmp_path / "rules"
    path.write_text(DUAL)
    rs = load(str(path))
    assert sorted(t.family for t in rs.tables) == ["ip", "ip6"]
    diffs = compare_kernel(("iptables", DUAL, DUAL), ("nft", emit_nft(rs)), _cases())
    assert diffs == []


LIMITED = """*filter
:INPUT DROP [0:0]
-A INPUT -p tcp -m tcp --dport 22 -m limit --limit 1/min --limit-burst 2 -j ACCEPT
COMMIT
"""


def test_inet_merge_keeps_a_bucket_per_family(kernel_ok, tmp_path):
    """`--inet` merges identical rules of the IPv4 and IPv6 inputs into one, except rules with
    state of their own (limit, quota, nth counter): iptables and ip6tables keep a bucket each,
    one inet rule would share one (the second family's packets found it empty)."""
    from fwc.backends.nft import emit_nft_with_warnings
    (tmp_path / "r.v4").write_text(LIMITED)
    (tmp_path / "r.v6").write_text(LIMITED)
    rs4, rs6 = load(str(tmp_path / "r.v4"), family="ip"), load(str(tmp_path / "r.v6"), family="ip6")
    from fwc import ir
    text, _ = emit_nft_with_warnings(ir.Ruleset(rs4.tables + rs6.tables), inet=True)
    assert "table inet filter" in text and text.count("limit rate 1/minute") == 2
    syn = {"dir": "in", "proto": "tcp", "sport": 40000, "dport": 22, "flags": "S"}
    v4, v6 = dict(src="198.51.100.7", dst="192.0.2.1"), dict(src="2001:db8:a::7", dst="2001:db8:f::1")
    cases = cases_from_json([
        {"name": "v4", "setup": [dict(syn, **v4)], "probe": dict(syn, sport=40001, **v4)},
        {"name": "v6", "probe": dict(syn, **v6)}])
    assert compare_kernel(("iptables", LIMITED, LIMITED), ("nft", text), cases) == []
