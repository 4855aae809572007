"""CONNMARK --save-mark/--restore-mark that write only some bits of the mark (--nfmask,
--ctmask, --mask, shifts).  nft cannot merge two marks in one expression; fwc writes such a
rule bit by bit in a chain of its own.  The kernel judges: iptables-restore of the rules
against nft -f of fwc's output, one probe per bit of the meta mark and of the ct mark after
the rules ran, and the simulator against the kernel."""

from __future__ import annotations

import pytest

from fwc import emit_nft
from fwc.backends.simulate import simulate
from fwc.frontends.iptables import parse_iptables_save
from fwc.packet import cases_from_json
from fwc.testing.compare import compare_kernel, kernel_verdicts

pytestmark = pytest.mark.kernel

# scenario s (source port 2000+s) starts with meta mark M[s] and ct mark C[s]
M = (0x2A5, 0x0F0, 0xFFF, 0x000, 0x5A0)
C = (0xA5A, 0x30F, 0x000, 0xFFF, 0x0C3)
BITS = 12
COPIES = (
    "--restore-mark --nfmask 0x80 --ctmask 0x80",
    "--save-mark --nfmask 0x220 --ctmask 0x2a0",
    "--restore-mark --nfmask 0x00f --ctmask 0x0f0 --right-shift-mark 4",
    "--save-mark --mask 0x00c --left-shift-mark 2",
    "--restore-mark --nfmask 0x400 --ctmask 0x000",
)


def _rules(copy: str) -> str:
    mangle = ["*mangle", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
              ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
    for s, (m, c) in enumerate(zip(M, C)):
        mangle.append(f"-A PREROUTING -p tcp --sport {2000 + s} -j MARK --set-xmark {m:#x}/0xffffffff")
        mangle.append(f"-A PREROUTING -p tcp --sport {2000 + s} -j CONNMARK --set-xmark {c:#x}/0xffffffff")
    mangle += [f"-A PREROUTING -p tcp -j CONNMARK {copy}", "COMMIT"]
    raw = ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           f"-A PREROUTING -p tcp --sport {2000 + len(M) - 1} -j CT --notrack", "COMMIT"]
    filt = ["*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for b in range(BITS):
        filt.append(f"-A INPUT -p tcp --dport {3000 + b} -m mark --mark {1 << b:#x}/{1 << b:#x} -j ACCEPT")
        filt.append(f"-A INPUT -p tcp --dport {3100 + b} -m connmark --mark {1 << b:#x}/{1 << b:#x} -j ACCEPT")
    filt.append("COMMIT")
    return "\n".join(raw + mangle + filt) + "\n"


CASES = cases_from_json([
    {"name": f"s{s}-{kind}{b}", "probe": {"dir": "in", "sport": 2000 + s, "dport": base + b}}
    for s in range(len(M)) for b in range(BITS) for kind, base in (("mark", 3000), ("ct", 3100))])


@pytest.mark.parametrize("copy", COPIES)
def test_masked_connmark_copy_bit_by_bit(kernel_ok, copy):
    text = _rules(copy)
    rs = parse_iptables_save(text, "connmark.rules", "ip")
    nft_text = emit_nft(rs)
    assert "fwc_connmark_1" in nft_text  # the bit-by-bit form, not a refusal
    diffs = compare_kernel(("iptables", text, ""), ("nft", nft_text), CASES)
    assert [(c.name, a.verdict, b.verdict) for c, a, b in diffs] == []
    kernel = kernel_verdicts(("iptables", text, ""), CASES)
    sim = simulate(rs, CASES)
    assert [(c.name, k.verdict, s.verdict) for c, k, s in zip(CASES, kernel, sim)
            if k.verdict != s.verdict] == []
    # the probes see the bits move: not every probe of a bit gets the same verdict
    assert len({k.verdict for k in kernel}) == 2
