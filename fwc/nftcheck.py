"""Validate nft text with libnftables (python3-nftables) without changing the ruleset.

The check runs in dry-run mode: nft parses the text and the kernel validates the batch, which
is then aborted.  It needs CAP_NET_ADMIN (root) for the kernel part."""

from __future__ import annotations

from fwc.errors import FwcError

INSTALL_HINT = ("python3-nftables is not installed (Debian package python3-nftables; "
                "use a venv with --system-site-packages)")


def _nftables():
    try:
        import nftables  # type: ignore[import-not-found]
    except ImportError:
        raise FwcError(INSTALL_HINT) from None
    return nftables


def check_nft(text: str) -> list[str]:
    """Error messages nft reports for `text` (empty when it would load)."""
    nft = _nftables().Nftables()
    nft.set_dry_run(True)
    rc, _out, err = nft.cmd(text)
    if rc == 0:
        return []
    msgs = [line for line in err.splitlines() if line.strip()]
    return msgs or [f"nft failed with status {rc}"]
