"""The collector is paused only while a ruleset is compiled or emitted, and always restored."""

from __future__ import annotations

import gc

import pytest

from fwc.backends.nft import emit_nft
from fwc.errors import FwcSyntaxError
from fwc.gcpause import gc_paused, without_gc
from fwc.policy import compile_full


def test_paused_inside_restored_after_even_on_error():
    seen = []

    @without_gc
    def probe(fail):
        seen.append(gc.isenabled())
        if fail:
            raise ValueError("x")

    assert gc.isenabled()
    probe(False)
    with pytest.raises(ValueError):
        probe(True)
    assert seen == [False, False] and gc.isenabled()


def test_a_disabled_collector_stays_disabled():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_compile_and_emit_leave_the_collector_on():
    res = compile_full("input policy drop {\n  allow ssh\n}\n", "p")
    assert gc.isenabled()
    emit_nft(res.ruleset)
    assert gc.isenabled()
    with pytest.raises(FwcSyntaxError):
        compile_full("input policy drop {\n  allow ssh frm x\n}\n", "p")
    assert gc.isenabled()
