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


# --- Hypothesis profiles, chosen with FWC_HYPOTHESIS_PROFILE=default|ci|long -----------------
# default/ci: the examples each property asks for (a few minutes in all on 2 cores), no deadline
# (kernel and shared CI machines are slow), failing examples printed as reproducible blobs.
# long: soak runs; properties that use fwc.testing.strategies.budget() scale to thousands.
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("default", settings.get_profile("ci"))
settings.register_profile("long", settings.get_profile("ci"), max_examples=2000)
settings.load_profile(os.environ.get("FWC_HYPOTHESIS_PROFILE", "default"))
