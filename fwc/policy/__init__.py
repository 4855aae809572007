"""The policy language: a short, readable firewall policy compiled to the IR (docs/policy.md)."""

from __future__ import annotations

from fwc import ir
from fwc.policy.compiler import PolicyResult, compile_full
from fwc.policy.resolve import Warning_, read_file

__all__ = ["compile_policy", "compile_policy_file", "compile_policy_nft", "compile_full",
           "PolicyResult", "Warning_"]


def compile_policy(text: str, filename: str = "<policy>") -> ir.Ruleset:
    """Compile policy text to an IR ruleset (one inet table 'fwc').  Raises FwcSyntaxError."""
    return compile_full(text, filename).ruleset


def compile_policy_file(path: str) -> PolicyResult:
    return compile_full(read_file(path), path)


def compile_policy_nft(text: str, filename: str = "<policy>") -> str:
    """Compile policy text straight to `nft -f` text."""
    from fwc.backends.nft import emit_nft
    return emit_nft(compile_policy(text, filename))
