"""iptables `-m recent` (xt_recent) into ir.Recent, with the checks the kernel makes when the
rule is loaded (xt_recent's checkentry), so a rule iptables-restore would refuse is refused here."""

from __future__ import annotations

import ipaddress

from fwc import ir
from fwc.frontends import values as V
from fwc.frontends.iptables_ext import _m, _val

COMMANDS = {"--set": "set", "--rcheck": "rcheck", "--update": "update", "--remove": "remove"}
MAX_HITCOUNT = 255  # the kernel keeps up to 256 stamps per address (XT_RECENT_MAX_NSTAMPS - 1)
MAX_NAME = 200  # XT_RECENT_NAME_LEN - 1


def _mask(ctx, o) -> int | None:
    try:
        addr = ipaddress.ip_address(o.args[0])
    except ValueError:
        raise ctx.error(f"bad --mask {o.args[0]!r}: an address is expected", o) from None
    width = 32 if ctx.family == "ip" else 128
    if addr.max_prefixlen != width:
        raise ctx.error(f"--mask {o.args[0]!r} is not of this table's family", o)
    value = int(addr)
    return None if value == 2**width - 1 else value


def _build_recent(opts, ctx):
    command = None
    negate = False
    kw: dict = {}
    for o in opts:
        if o.name in COMMANDS:
            if command is not None:
                raise ctx.error("recent: only one of --set, --rcheck, --update, --remove allowed", o)
            command, negate = COMMANDS[o.name], o.negate
        elif o.negate:
            raise ctx.error(f"recent: '!' is not allowed before {o.name}", o)
        elif o.name == "--seconds":
            kw["seconds"] = _val(ctx, o, V.parse_int, o.args[0], 1, 2**32 - 1, "seconds")
        elif o.name == "--hitcount":
            kw["hitcount"] = _val(ctx, o, V.parse_int, o.args[0], 1, MAX_HITCOUNT, "hit count")
        elif o.name == "--reap":
            kw["reap"] = True
        elif o.name == "--rttl":
            kw["rttl"] = True
        elif o.name == "--name":
            name = o.args[0]
            if not name or len(name) > MAX_NAME or "/" in name or name in (".", ".."):
                raise ctx.error(f"recent: bad list name {name!r}", o)
            kw["name"] = name
        elif o.name in ("--rsource", "--rdest"):
            kw["side"] = "saddr" if o.name == "--rsource" else "daddr"
        elif o.name == "--mask":
            kw["mask"] = _mask(ctx, o)
    if command is None:
        raise ctx.error("recent needs one of --set, --rcheck, --update, --remove",
                        opts[0] if opts else None)
    modifiers = [k for k in ("seconds", "hitcount", "reap", "rttl") if kw.get(k)]
    if command in ("set", "remove") and modifiers:
        raise ctx.error(f"recent --{command} cannot take --{modifiers[0]} (only --rcheck and "
                        "--update can)", opts[0])
    if kw.get("reap") and not kw.get("seconds"):
        raise ctx.error("recent --reap needs --seconds", opts[0])
    return [ir.Recent(command, negate=negate, **kw)]


def register() -> None:
    _m("recent", {"--set": 0, "--rcheck": 0, "--update": 0, "--remove": 0, "--seconds": 1,
                  "--reap": 0, "--hitcount": 1, "--rttl": 0, "--name": 1, "--rsource": 0,
                  "--rdest": 0, "--mask": 1}, _build_recent)
