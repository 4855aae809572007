"""The value lists of tests/test_nft_frontend.py against nft itself: what nft -c refuses fwc
refuses, and what nft takes fwc reads and writes back as text nft takes."""

from __future__ import annotations

import os

import pytest

from fwc.backends.nft import emit_nft
from fwc.frontends.nft import parse_nft
from fwc.testing import netns
from tests.test_nft_frontend import REFUSED_RULESETS, REFUSED_VALUES, TAKEN_VALUES, _in_rule

pytestmark = pytest.mark.kernel


def test_fwc_takes_and_refuses_the_values_nft_does(kernel_ok):
    ns = f"fwcval{os.getpid()}"
    netns.create(ns)
    try:
        def nft_ok(text: str) -> bool:
            return netns.run(["nft", "-c", "-f", "-"], input=text, ns=ns,
                             check=False).returncode == 0
        for rule in REFUSED_VALUES:
            assert not nft_ok(_in_rule(rule)), rule
        for text in REFUSED_RULESETS:
            assert not nft_ok(text), text
        for rule in TAKEN_VALUES:
            assert nft_ok(_in_rule(rule)), rule
            assert nft_ok(emit_nft(parse_nft(_in_rule(rule), "v.nft"))), rule
    finally:
        netns.delete(ns)
