"""Pause Python's cyclic garbage collector while a large ruleset is built or rendered.

Compiling a 5,000-rule policy allocates several hundred thousand small objects that all stay
alive until the end; each of the collector's full passes walks every one of them, which cost
about a third of `fwc compile`'s time.  Those objects hold no reference cycles (reference
counting frees them), so nothing is lost by letting the collector run afterwards instead."""

from __future__ import annotations

import contextlib
import functools
import gc


# Set by the command-line entry points (one ruleset per process): what a paused block built
# is then frozen (gc.freeze) rather than walked by the collector's next full pass, which
# cost `fwc translate` of 10,000 rules ~20 ms. A library caller keeps the default (frozen
# objects are never collected).
FREEZE_AFTER = False


@contextlib.contextmanager
def gc_paused():
    """No cyclic collection inside the block; the previous state is restored afterwards (a
    nested or already-disabled collector is left as it was)."""
    was = gc.isenabled()
    if was:
        gc.disable()
    try:
        yield
    finally:
        if was:
            if FREEZE_AFTER:
                gc.freeze()
            gc.enable()


def without_gc(fn):
    """Decorator: run fn with the collector paused."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with gc_paused():
            return fn(*args, **kwargs)
    return wrapper
