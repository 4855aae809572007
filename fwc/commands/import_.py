"""`fwc import`: read nftables rules (the running ruleset, an nft file or libnftables JSON) and print
them as nft text through the IR, so what fwc understood is visible."""

from __future__ import annotations

import sys

from fwc import ir
from fwc.errors import FwcError, FwcSyntaxError


def register(sub) -> None:
    p = sub.add_parser("import", help="read an nftables ruleset (live, text or JSON) into fwc",
                       description="Read nftables rules and print them as nft text via the IR.")
    p.add_argument("file", nargs="?", metavar="FILE", help="input file ('-' = stdin)")
    p.add_argument("--live", action="store_true",
                   help="read the running ruleset through libnftables (needs root)")
    p.add_argument("--from", dest="src", default="nft", choices=["nft", "nft-json"],
                   help="syntax of FILE (default nft)")
    p.add_argument("-I", "--include-dir", action="append", default=[], metavar="DIR",
                   help="nft text: also allow includes from DIR")
    p.set_defaults(func=run)


def read_live() -> ir.Ruleset:
    """The running ruleset, as JSON from libnftables."""
    from fwc.frontends.nft_json import parse_nft_json
    try:
        import nftables
    except ImportError:
        raise FwcError("the python3-nftables binding is not installed (needed for --live)",
                       ir.Loc("<live>"))
    nft = nftables.Nftables()
    nft.set_json_output(True)
    rc, out, err = nft.cmd("list ruleset")
    if rc != 0:
        raise FwcError(f"nft list ruleset failed: {err.strip()}", ir.Loc("<live>"))
    return parse_nft_json(out or '{"nftables": []}', "<live>")


def load(path: str, src: str, include_dirs=()) -> ir.Ruleset:
    from fwc.frontends import read_source
    text, name = read_source(path)  # unreadable, binary or endless input: a located error
    try:
        return _parse(text, name, src, include_dirs)
    except RecursionError:  # thousands of nested brackets: no ruleset is like that
        from fwc.frontends import too_deep
        raise too_deep(name) from None


def _parse(text: str, name: str, src: str, include_dirs) -> ir.Ruleset:
    if src == "nft-json":
        from fwc.frontends.nft_json import parse_nft_json
        return parse_nft_json(text, name)
    from fwc.frontends.nft import parse_nft
    return parse_nft(text, name, include_dirs)


def run(args) -> int:
    if args.live == (args.file is not None):
        raise FwcSyntaxError("give either --live or FILE", ir.Loc("<args>"))
    rs = read_live() if args.live else load(args.file, args.src, tuple(args.include_dir))
    from fwc.backends.nft import emit_nft
    sys.stdout.write(emit_nft(rs))
    return 0
