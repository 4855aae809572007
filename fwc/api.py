"""The stable library API: `import fwc` and call these."""

from __future__ import annotations

__all__: list[str] = []
