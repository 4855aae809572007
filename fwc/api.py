"""The stable library API: `import fwc` and call these."""

from __future__ import annotations

__all__: list[str] = []

# policy language (docs/policy.md)
from fwc.policy import compile_policy, compile_policy_nft  # noqa: E402

__all__ += ["compile_policy", "compile_policy_nft"]

# simulator (fwc simulate)
from fwc.backends.simulate import simulate  # noqa: E402

__all__ += ["simulate"]
