"""fwc: a firewall ruleset compiler.  Library entry points are re-exported from `fwc.api`."""

from fwc.api import *  # noqa: F401,F403
from fwc.api import __all__  # noqa: F401

__version__ = "0.1.0"
