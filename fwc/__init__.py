"""fwc: a firewall ruleset compiler.  Library entry points live in `fwc.api` and are
re-exported here lazily, so that the command line does not pay for what it does not use."""

import importlib

__version__ = "0.1.0"

# kept equal to fwc.api.__all__ (tests/test_api.py checks it)
API = ("compile_policy", "compile_policy_nft", "simulate", "parse", "load", "translate",
       "emit_nft", "emit_iptables", "lint", "Finding")
__all__ = list(API)


def __getattr__(name: str):
    if name in API:
        return getattr(importlib.import_module("fwc.api"), name)
    raise AttributeError(f"module 'fwc' has no attribute {name!r}")
