"""Paths of the shared corpus (../shared from the repo root) for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpus"
REAL_WORLD = SHARED / "real-world"
TXLATE = SHARED / "iptables-txlate"


def require(path: Path) -> Path:
    """Skip (outside CI) when the shared corpus is not beside the checkout; fail in CI."""
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared corpus missing in CI: {path}")
        pytest.skip(f"shared corpus not present at {path}")
    return path


def real_world_files() -> list[Path]:
    if not REAL_WORLD.exists():
        return []
    skip = ("README.md", "LICENSE-BSD-2-Clause")
    return sorted(p for p in REAL_WORLD.rglob("*")
                  if p.is_file() and p.name not in skip and not p.name.startswith("COPYING"))


def corpus_id(p: Path) -> str:
    """A corpus file's name relative to the corpus, a shipped example's relative to the repo."""
    return str(p.relative_to(REAL_WORLD if REAL_WORLD in p.parents else REPO))
