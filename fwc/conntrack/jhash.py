"""The kernel's jhash (Bob Jenkins' lookup3, include/linux/jhash.h) on 32-bit words, and
xt_cluster's node choice.  Written from the published algorithm."""

from __future__ import annotations

import sys

_M = 0xFFFFFFFF
_INITVAL = 0xDEADBEEF


def _rol(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & _M; a ^= _rol(c, 4); c = (c + b) & _M
    b = (b - a) & _M; b ^= _rol(a, 6); a = (a + c) & _M
    c = (c - b) & _M; c ^= _rol(b, 8); b = (b + a) & _M
    a = (a - c) & _M; a ^= _rol(c, 16); c = (c + b) & _M
    b = (b - a) & _M; b ^= _rol(a, 19); a = (a + c) & _M
    c = (c - b) & _M; c ^= _rol(b, 4); b = (b + a) & _M
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c ^= b; c = (c - _rol(b, 14)) & _M
    a ^= c; a = (a - _rol(c, 11)) & _M
    b ^= a; b = (b - _rol(a, 25)) & _M
    c ^= b; c = (c - _rol(b, 16)) & _M
    a ^= c; a = (a - _rol(c, 4)) & _M
    b ^= a; b = (b - _rol(a, 14)) & _M
    c ^= b; c = (c - _rol(b, 24)) & _M
    return c


def jhash2(words: list[int], seed: int) -> int:
    """jhash2(k, len(words), seed): the hash of an array of 32-bit words."""
    n = len(words)
    a = b = c = (_INITVAL + (n << 2) + seed) & _M
    k = 0
    while n > 3:
        a = (a + words[k]) & _M
        b = (b + words[k + 1]) & _M
        c = (c + words[k + 2]) & _M
        a, b, c = _mix(a, b, c)
        n -= 3
        k += 3
    if n == 0:
        return c
    if n == 3:
        c = (c + words[k + 2]) & _M
    if n >= 2:
        b = (b + words[k + 1]) & _M
    a = (a + words[k]) & _M
    return _final(a, b, c)


def jhash_bytes(data: bytes, seed: int) -> int:
    """jhash(key, len(data), seed): the hash of a byte string (nft's `jhash` expression).  Whole
    12-byte blocks are read as native words, the tail byte by byte, little-endian."""
    n = len(data)
    a = b = c = (_INITVAL + n + seed) & _M
    k = 0
    while n > 12:
        a = (a + int.from_bytes(data[k:k + 4], sys.byteorder)) & _M
        b = (b + int.from_bytes(data[k + 4:k + 8], sys.byteorder)) & _M
        c = (c + int.from_bytes(data[k + 8:k + 12], sys.byteorder)) & _M
        a, b, c = _mix(a, b, c)
        n -= 12
        k += 12
    if n == 0:
        return c
    tail = data[k:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    return _final(a, b, c)


def address_words(l3: int, addr: int) -> list[int]:
    """An address as the kernel's hash reads it: its network-order bytes as native words."""
    raw = addr.to_bytes(4 if l3 == 4 else 16, "big")
    return [int.from_bytes(raw[i:i + 4], sys.byteorder) for i in range(0, len(raw), 4)]


def cluster_node(l3: int, src: int, seed: int, total: int) -> int:
    """The node (0..total-1) xt_cluster gives a connection whose original source is `src`:
    jhash2 of the address's first word, scaled by reciprocal_scale.  (For IPv6 xt_cluster
    passes NF_CT_TUPLE_L3SIZE / sizeof(u32) words, which is 4 / 4 = 1: only the top 32 bits of
    the address count; measured in the kernel, tests/kernel/test_cluster_kernel.py.)"""
    return (jhash2(address_words(l3, src)[:1], seed) * total) >> 32
