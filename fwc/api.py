"""The stable library API: `import fwc` and call these."""

from __future__ import annotations

__all__: list[str] = []

# policy language (docs/policy.md)
from fwc.policy import compile_policy, compile_policy_nft  # noqa: E402

__all__ += ["compile_policy", "compile_policy_nft"]

# simulator (fwc simulate)
from fwc.backends.simulate import simulate  # noqa: E402

__all__ += ["simulate"]

# front ends and backends (fwc translate)
from fwc.backends.iptables import emit_iptables  # noqa: E402
from fwc.backends.nft import emit_nft  # noqa: E402
from fwc.frontends import load_ruleset as load  # noqa: E402
from fwc.frontends import parse_text as parse  # noqa: E402


def translate(text: str, to: str = "nft", fmt: str = "auto", name: str = "<input>", **options):
    """Parse `text` (any supported syntax) and emit it as nft text (to="nft", `options` as for
    `emit_nft`) or as {"ip"|"ip6": iptables-restore text} (to="iptables").  Raises a located
    `fwc.errors.FwcError` (or `ErrorGroup`) when the input is malformed or not expressible."""
    rs = parse(text, name, fmt)
    if to == "nft":
        return emit_nft(rs, **options)
    if to == "iptables":
        return emit_iptables(rs)
    raise ValueError(f"to must be 'nft' or 'iptables', not {to!r}")


__all__ += ["parse", "load", "translate", "emit_nft", "emit_iptables"]

# checks (fwc lint)
from fwc.linter import Finding, lint  # noqa: E402

__all__ += ["lint", "Finding"]
