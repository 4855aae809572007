"""A minimal nfnetlink_log (NFLOG) listener: the packets an nft `log group N` rule copies out.

The harness logs every TCP RST and ICMP error the firewall namespace sends, so it can tell a
rejection of the probe (it quotes or answers exactly that packet) from a late error about an
earlier packet (e.g. a neighbour that never answered), which a plain counter cannot.
Only the kernel ABI is used (linux/netfilter/nfnetlink_log.h); no library.
"""

from __future__ import annotations

import errno
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 2

_NLMSGHDR = struct.Struct("=IHHII")
_NLATTR = struct.Struct("=HH")


class NflogError(Exception):
    pass


def _attr(kind: int, payload: bytes) -> bytes:
    raw = _NLATTR.pack(_NLATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _attrs(data: bytes):
    off = 0
    while off + _NLATTR.size <= len(data):
        length, kind = _NLATTR.unpack_from(data, off)
        if length < _NLATTR.size:
            return
        yield kind & 0x7FFF, data[off + _NLATTR.size: off + length]
        off += (length + 3) & ~3


class NflogListener:
    """Bound to one NFLOG group of the network namespace it is created in (call it inside)."""

    def __init__(self, group: int, copy_range: int = 512) -> None:
        self.group = group
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.sock.bind((0, 0))
            self._config(_attr(NFULA_CFG_CMD, struct.pack("B", NFULNL_CFG_CMD_BIND)))
            self._config(_attr(NFULA_CFG_MODE, struct.pack("!IBB", copy_range, NFULNL_COPY_PACKET, 0)))
            # the kernel batches up to 100 packets or 1 s by default: send each one at once
            self._config(_attr(NFULA_CFG_QTHRESH, struct.pack("!I", 1)))
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def _config(self, attrs: bytes) -> None:
        body = struct.pack("!BBH", socket.AF_UNSPEC, 0, self.group) + attrs
        kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind,
                                      NLM_F_REQUEST | NLM_F_ACK, 0, 0) + body)
        reply = self.sock.recv(4096)
        length, kind, _, _, _ = _NLMSGHDR.unpack_from(reply)
        if kind == NLMSG_ERROR:
            err = struct.unpack_from("=i", reply, _NLMSGHDR.size)[0]
            if err:
                raise NflogError(f"NFLOG group {self.group} config failed: {errno.errorcode.get(-err, err)}")

    def drain(self) -> list[tuple[str, bytes]]:
        """(prefix, packet from its network header) of every logged packet waiting."""
        packets = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return packets
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # messages were lost: the caller cannot trust a DROP
                    raise NflogError("NFLOG receive buffer overflowed") from None
                raise
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, kind, _, _, _ = _NLMSGHDR.unpack_from(data, off)
                if length < _NLMSGHDR.size:
                    break
                if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
                    body = data[off + _NLMSGHDR.size + 4: off + length]  # after nfgenmsg
                    fields = dict(_attrs(body))
                    prefix = fields.get(NFULA_PREFIX, b"").rstrip(b"\0").decode(errors="replace")
                    packets.append((prefix, fields.get(NFULA_PAYLOAD, b"")))
                off += (length + 3) & ~3

    def close(self) -> None:
        self.sock.close()
