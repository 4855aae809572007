"""Round trip: IR -> nft text (fwc.backends.nft.emit_nft) -> parse_nft gives the same IR."""

import ipaddress
from pathlib import Path

import attrs
import pytest

from tests.corpus import corpus_id, real_world_files

from fwc import ir
from fwc.errors import Unsupported

emit = pytest.importorskip("fwc.backends.nft").emit_nft
from fwc.frontends.nft import parse_nft  # noqa: E402
from test_nft_frontend_nftpy_data import strip_implied_protocols  # noqa: E402

REAL_WORLD = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "real-world"

net = ipaddress.ip_network
R = ir.Rule

HAND_BUILT = ir.Ruleset((ir.Table("ip", "filter", (
    ir.Chain("INPUT", (
        R((ir.CtState(frozenset({"ESTABLISHED", "RELATED"})),), verdict=ir.Accept()),
        R((ir.Interface("iifname", "lo"),), verdict=ir.Accept()),
        R((ir.Proto(frozenset({6})), ir.Port("tcp", "dport", (ir.Range(22, 22), ir.Range(80, 90)))),
          (ir.Counter(),), ir.Accept(), "ssh and web"),
        R((ir.Address("saddr", (net("192.0.2.0/24"),), negate=True),), verdict=ir.Drop()),
        R((ir.Interface("iifname", "eth+"), ir.Mark("meta", 1, 0xFF)), verdict=ir.Jump("other")),
        R((ir.Proto(frozenset({1})), ir.Icmp("ip", 8)), (ir.Log("ping ", 6),), ir.Accept()),
        R((ir.Limit(10, "minute", 5),), verdict=ir.Accept()),
        R((ir.Proto(frozenset({6})),), verdict=ir.Reject("tcp-reset")),
    ), ir.BaseHook("filter", "input", 0, "drop")),
    ir.Chain("other", (R(statements=(ir.SetMark("meta", 2),), verdict=ir.Return()),)),
)),))


def _canonical(rs: ir.Ruleset) -> ir.Ruleset:
    """Equal meaning, equal form: protocol matches implied by port/icmp/flag matches are dropped
    (nft and the nft backend leave them out) and `reject` is its default, port-unreachable."""
    import attrs

    def rule(r):
        r = strip_implied_protocols(r)
        if r.verdict == ir.Reject("port-unreachable"):
            r = attrs.evolve(r, verdict=ir.Reject(None))
        return r
    return ir.Ruleset(tuple(attrs.evolve(t, chains=tuple(attrs.evolve(c, rules=tuple(
        rule(r) for r in c.rules)) for c in t.chains)) for t in rs.tables))


def test_hand_built_ir_round_trips():
    text = emit(HAND_BUILT)
    assert _canonical(parse_nft(text, "emitted.nft")) == _canonical(HAND_BUILT), text


@pytest.mark.parametrize("path", real_world_files(), ids=corpus_id)
def test_real_world_translations_round_trip(path):
    """Every real-world ruleset: its nft translation parses back to the same IR.  The two that
    fwc refuses as a whole are translated leaving out the refused rule, and compared without it."""
    from fwc.backends.nft import emit_nft_with_warnings
    from fwc.backends.nft_helpers import split_raw_helpers
    from fwc.frontends.iptables import parse_iptables_save

    rs = parse_iptables_save(path.read_text(), str(path))
    text, dropped = emit_nft_with_warnings(rs, drop_unsupported=True)
    lines = {(w.loc.file, w.loc.line) for w in dropped}
    kept = ir.Ruleset(tuple(attrs.evolve(t, chains=tuple(attrs.evolve(c, rules=tuple(
        r for r in c.rules if (r.loc.file, r.loc.line) not in lines)) for c in t.chains))
        for t in rs.tables))
    assert len(dropped) <= 1
    back = parse_nft(text, "emitted.nft")
    # raw-table helper assignments come back as their replay after conntrack (nft_helpers)
    assert _canonical(back) == _canonical(split_raw_helpers(kept))
