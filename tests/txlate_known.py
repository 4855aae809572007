"""iptables-translate vectors whose expected nft differs from fwc's output, with the reason.

kind "equivalent": a test or the kernel shows both mean the same (or the vector is wrong and fwc
is right); kind "gap": fwc refuses the construct (a located 'unsupported' error) - listed in README.
"""

KNOWN: dict[str, tuple[str, str]] = {}
