"""A named set's `size N` bounds what the packet path can add: with N elements in it, `add` or
`update` of a new element fails and the rule stops there (nft_dynset), while an element already
in the set is found and the rule goes on; `delete` frees a slot.  The kernel runs each case on
a freshly loaded ruleset (its sets start as declared), and fwc's nft output and the simulator
must give what the kernel gives for the original."""

from __future__ import annotations

import pytest

from fwc.backends.nft import emit_nft
from fwc.backends.simulate import SimOptions, Simulator
from fwc.frontends.nft import parse_nft
from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import KernelHarness, kernel_or_skip

pytestmark = pytest.mark.kernel

RULESET = """table ip t {
 set seen {
  type ipv4_addr
  size %(size)d
  flags dynamic,timeout
  timeout 1m
  %(elements)s
 }
 chain input {
  type filter hook input priority filter; policy drop;
  udp dport 7 delete @seen { ip saddr } accept
  tcp dport 22 %(op)s @seen { ip saddr } accept
  tcp dport 23 ip saddr @seen accept
 }
}
"""


def _syn(src, port=22):
    return {"dir": "in", "src": src, "dst": "192.0.2.1", "sport": 40000, "dport": port,
            "flags": "S"}


def _udp7(src):
    return {"dir": "in", "proto": "udp", "src": src, "dst": "192.0.2.1", "sport": 5000,
            "dport": 7}


A, B, C = "198.51.100.7", "198.51.100.8", "198.51.100.9"
CASES = [  # (name, setup packets, probe)
    ("second-source", [_syn(A)], _syn(B, 22)),
    ("same-source-again", [_syn(A, 22)], _syn(A, 23)),
    ("full-then-lookup", [_syn(A), _syn(B)], _syn(B, 23)),
    ("delete-frees-a-slot", [_syn(A), _udp7(A), _syn(B)], _syn(B, 23)),
    ("declared-element-fills-it", [_syn(C)], _syn(C, 23)),
]


@pytest.mark.parametrize("size,elements", [(1, ""), (2, ""), (1, "elements = { 198.51.100.8 }"),
                                            (2, "elements = { 198.51.100.8 }")])
@pytest.mark.parametrize("op", ["add", "update"])
def test_set_size_agrees_with_the_kernel(size, elements, op):
    kernel_or_skip()
    text = RULESET % {"size": size, "elements": elements, "op": op}
    rs = parse_nft(text, "size.nft")
    ours = emit_nft(rs)
    assert f"size {size}" in ours
    sim = Simulator(rs, SimOptions())
    with KernelHarness() as h:
        for name, setup, probe in CASES:
            case = cases_from_json([{"name": name, "setup": setup, "probe": probe}])
            h.prepare(case)
            want = kernel_verdicts(("nft", text), case, h)[0]
            got = kernel_verdicts(("nft", ours), case, h)[0]
            s = sim.run_case(case[0])
            kern = (want.setup_verdicts, want.verdict)
            assert (got.setup_verdicts, got.verdict) == kern, f"{name}: fwc's nft output"
            assert (tuple(s.setup_verdicts), s.verdict) == kern, f"{name}: simulator"


DECLARATIONS = """table inet t {
 set a {
  type ipv4_addr; size 3; flags timeout; timeout 1m; gc-interval 30s
  elements = { 10.0.0.1 timeout 90s, 10.0.0.2, 10.0.0.3 timeout 1h expires 20m }
 }
 map m {
  type ipv4_addr : verdict; flags timeout
  elements = { 10.0.0.4 timeout 5m : accept, 10.0.0.5 : drop }
 }
}
"""


def test_size_gc_interval_and_element_timeouts_are_written_back(kernel):
    import re
    strip = re.compile(r" expires \S+")
    kernel.load_nft(DECLARATIONS)
    want = strip.sub("", kernel.nft_list())
    kernel.load_nft(emit_nft(parse_nft(DECLARATIONS, "decl.nft")))
    assert strip.sub("", kernel.nft_list()) == want
    assert "timeout 1h" in want and "size 3" in want and "gc-interval 30s" in want
