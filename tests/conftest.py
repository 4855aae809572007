"""Shared pytest setup: the `kernel` fixture for tests that need the real-kernel harness.

Kernel tests skip with the reason when this machine cannot build network namespaces,
except in CI (env CI=true), where a missing kernel harness is a failure, not a skip.
"""

from __future__ import annotations

import pytest

from fwc.testing.kernel import KernelHarness, kernel_or_skip


@pytest.fixture
def kernel():
    """A fresh KernelHarness (namespaces created, deleted after the test)."""
    kernel_or_skip()
    with KernelHarness() as harness:
        yield harness


@pytest.fixture(scope="module")
def kernel_module():
    """One KernelHarness shared by a module's tests (reload the ruleset in each test)."""
    kernel_or_skip()
    with KernelHarness() as harness:
        yield harness


@pytest.fixture(scope="session")
def kernel_ok():
    """Only the check (skip, or fail in CI): for tests that build their own harness."""
    kernel_or_skip()
    return True
