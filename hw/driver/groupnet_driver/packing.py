"""Folding and bit packing of accelerator inputs/outputs, as FINN's DMA engines see them.

A tensor in its *normal* shape (e.g. NHWC ``(N, 28, 28, 1)``) is *folded* to the shape the
stream carries (``(N, 28, 28, 1, SIMD)``: the last axis is one stream beat), then each beat
is *packed* into ``ceil(SIMD * bits / 8)`` bytes: element 0 in the least significant bits,
bytes little-endian, bipolar -1/+1 as bit 0/1. This is FINN's
``finnpy_to_packed_bytearray(x, dt, reverse_inner=True, reverse_endian=True)`` layout
(the property-based tests check it against FINN), written with numpy alone so that it runs
on a PYNQ board.
"""

from __future__ import annotations

import numpy as np

from .datatypes import IntType


def packed_bytes(elements: int, dt: IntType) -> int:
    """Bytes per packed beat of ``elements`` values of ``dt``."""
    return (elements * dt.bits + 7) // 8


def pack(folded: np.ndarray, dt: IntType) -> np.ndarray:
    """Pack the last axis of an integer-valued array into uint8 bytes."""
    values = np.asarray(folded)
    if values.size and (values.min() < dt.min or values.max() > dt.max):
        raise ValueError(f"values outside {dt.name} [{dt.min}, {dt.max}]: "
                         f"[{values.min()}, {values.max()}]")
    codes = values.astype(np.int64)
    if dt.bipolar:
        codes = (codes + 1) // 2
    codes = codes & ((1 << dt.bits) - 1)
    elements = codes.shape[-1]
    bits = (codes[..., None] >> np.arange(dt.bits)) & 1          # (..., E, bits), LSB first
    bits = bits.reshape(*codes.shape[:-1], elements * dt.bits).astype(np.uint8)
    pad = packed_bytes(elements, dt) * 8 - elements * dt.bits
    if pad:
        bits = np.concatenate([bits, np.zeros((*bits.shape[:-1], pad), np.uint8)], axis=-1)
    return np.packbits(bits, axis=-1, bitorder="little")


def unpack(packed: np.ndarray, dt: IntType, elements: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``elements`` values of ``dt`` per row of bytes (int64)."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.shape[-1] != packed_bytes(elements, dt):
        raise ValueError(f"{packed.shape[-1]} bytes per beat, expected "
                         f"{packed_bytes(elements, dt)} for {elements} x {dt.name}")
    bits = np.unpackbits(packed, axis=-1, bitorder="little")[..., :elements * dt.bits]
    bits = bits.reshape(*packed.shape[:-1], elements, dt.bits).astype(np.int64)
    codes = (bits << np.arange(dt.bits)).sum(axis=-1)
    if dt.bipolar:
        return codes * 2 - 1
    if dt.signed:
        codes = np.where(codes >= 1 << (dt.bits - 1), codes - (1 << dt.bits), codes)
    return codes


def bytes_to_words(packed: np.ndarray) -> np.ndarray:
    """Packed beats (..., B bytes) -> 32-bit words (..., ceil(B/4)), least significant word
    first: how a beat sits on an AXI stream of a Verilator model's 32-bit word ports."""
    pad = (-packed.shape[-1]) % 4
    if pad:
        packed = np.concatenate([packed, np.zeros((*packed.shape[:-1], pad), np.uint8)], -1)
    return np.ascontiguousarray(packed).view("<u4")


def words_to_bytes(words: np.ndarray, nbytes: int) -> np.ndarray:
    """Inverse of :func:`bytes_to_words`, keeping the first ``nbytes`` of each beat."""
    return np.ascontiguousarray(words.astype("<u4")).view(np.uint8)[..., :nbytes]
