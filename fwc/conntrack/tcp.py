"""TCP connection tracking: flag validation, the state transition table and timeouts.

The transition table restates the kernel's documented behaviour (nf_conntrack_proto_tcp.c):
rows are the packet's flag class, columns the current state, per direction.  Sequence-number
window checks are not modelled: every segment is assumed to be in window.
"""

from __future__ import annotations

from typing import Optional

from fwc.conntrack.skb import TCP_FLAG_BITS

FIN, SYN, RST, ACK, URG = (TCP_FLAG_BITS[n] for n in ("FIN", "SYN", "RST", "ACK", "URG"))

# flag combinations (ignoring PSH ECE CWR) the kernel accepts at all; others are INVALID
VALID_FLAGS = frozenset((SYN, SYN | URG, SYN | ACK, RST, RST | ACK, FIN | ACK, FIN | ACK | URG,
                         ACK, ACK | URG))

STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
          "TIME_WAIT", "CLOSE", "SYN_SENT2")
IV, IG = "INVALID", "IGNORE"  # pseudo-states: packet invalid / ignored (state kept)

_COLS = STATES
_ORIGINAL = {
    "SYN": ("SYN_SENT", "SYN_SENT", IG, IG, IG, IG, IG, "SYN_SENT", "SYN_SENT", "SYN_SENT2"),
    "SYNACK": (IV, IV, IG, IG, IG, IG, IG, IG, IG, "SYN_RECV"),
    "FIN": (IV, IV, "FIN_WAIT", "FIN_WAIT", "LAST_ACK", "LAST_ACK", "LAST_ACK", "TIME_WAIT",
            "CLOSE", IV),
    "ACK": ("ESTABLISHED", IV, "ESTABLISHED", "ESTABLISHED", "CLOSE_WAIT", "CLOSE_WAIT",
            "TIME_WAIT", "TIME_WAIT", "CLOSE", IV),
    "RST": (IV,) + ("CLOSE",) * 9,
    "NONE": (IV,) * 10,
}
_REPLY = {
    # (a SYN from the server in TIME_WAIT reopens the connection the other way round)
    "SYN": (IV, "SYN_SENT2", IV, IV, IV, IV, IV, "SYN_SENT", IV, "SYN_SENT2"),
    "SYNACK": (IV, "SYN_RECV", IG, IG, IG, IG, IG, IG, IG, "SYN_RECV"),
    "FIN": (IV, IV, "FIN_WAIT", "FIN_WAIT", "LAST_ACK", "LAST_ACK", "LAST_ACK", "TIME_WAIT",
            "CLOSE", IV),
    "ACK": (IV, IG, "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "CLOSE_WAIT", "TIME_WAIT",
            "TIME_WAIT", "CLOSE", IG),
    "RST": (IV,) + ("CLOSE",) * 9,
    "NONE": (IV,) * 10,
}
TABLE = ({k: dict(zip(_COLS, v)) for k, v in _ORIGINAL.items()},
         {k: dict(zip(_COLS, v)) for k, v in _REPLY.items()})

TIMEOUTS = {"SYN_SENT": 120, "SYN_RECV": 60, "ESTABLISHED": 432000, "FIN_WAIT": 120,
            "CLOSE_WAIT": 60, "LAST_ACK": 30, "TIME_WAIT": 120, "CLOSE": 10, "SYN_SENT2": 120,
            "NONE": 0}


def flag_class(flags: int) -> str:
    """The kernel's get_conntrack_index: which table row a segment uses."""
    if flags & RST:
        return "RST"
    if flags & SYN:
        return "SYNACK" if flags & ACK else "SYN"
    if flags & FIN:
        return "FIN"
    if flags & ACK:
        return "ACK"
    return "NONE"


def flags_valid(flags: int) -> bool:
    return (flags & (FIN | SYN | RST | ACK | URG)) in VALID_FLAGS


def new_state(flags: int, loose: bool) -> Optional[str]:
    """State of a new connection opened by this segment, or None if it cannot open one."""
    first = TABLE[0][flag_class(flags)]["NONE"]
    if first == "SYN_SENT":
        return first
    if first == "ESTABLISHED" and loose:
        return "ESTABLISHED"  # mid-stream pickup (nf_conntrack_tcp_loose)
    return None


def transition(state: str, direction: int, flags: int) -> str:
    return TABLE[direction][flag_class(flags)][state]


UNACK = 300  # timeouts[TCP_CONNTRACK_UNACK] (and RETRANS)


def refresh_timeout(state: str, unacked: bool, seen_reply: bool, rst: bool = False) -> int:
    """The timeout nf_conntrack_tcp_packet sets: a RST closes (CLOSE), unacknowledged data and
    an entry without a reply yet (seen before this packet; a mid-stream pickup) are capped at
    5 minutes instead of ESTABLISHED's 5 days."""
    if rst:
        return TIMEOUTS["CLOSE"]
    timeout = TIMEOUTS.get(state or "NONE", 0)
    if (unacked or not seen_reply) and state == "ESTABLISHED":
        return min(timeout, UNACK)
    return timeout
