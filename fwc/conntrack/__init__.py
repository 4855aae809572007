"""Connection tracking as the simulator models it: tuples, entries, TCP states, helpers, NAT."""

from fwc.conntrack.skb import Skb
from fwc.conntrack.table import ConntrackTable, Entry, Expectation, format_entry, invert

__all__ = ["ConntrackTable", "Entry", "Expectation", "Skb", "format_entry", "invert"]
