"""The driver's folding/packing against FINN's data packing (property-based), numpy only."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qonnx.core.datatype import DataType

from finn.util.data_packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy
from groupnet.hw.driver.groupnet_driver.datatypes import datatype
from groupnet.hw.driver.groupnet_driver.packing import (bytes_to_words, pack, unpack,
                                                               words_to_bytes)

# FINN packs from a float32 container: exact up to 24-bit values, so compare up to 16 bits
NAMES = (["BIPOLAR", "BINARY"] + [f"UINT{b}" for b in (2, 3, 4, 5, 7, 8, 12, 16)]
         + [f"INT{b}" for b in (2, 3, 4, 6, 8, 9, 16)])


@st.composite
def tensors(draw, names=NAMES):
    name = draw(st.sampled_from(names))
    dt = datatype(name)
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3))) + (
        draw(st.integers(1, 40)),)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dt.bipolar:
        values = rng.choice([-1, 1], size=shape)
    else:
        values = rng.integers(dt.min, dt.max, size=shape, endpoint=True)
    return name, values


@settings(max_examples=300, deadline=None)
@given(tensors())
def test_pack_matches_finn(case):
    name, values = case
    ours = pack(values, datatype(name))
    finn = finnpy_to_packed_bytearray(values.astype(np.float32), DataType[name],
                                      reverse_inner=True, reverse_endian=True)
    assert ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, finn)


@settings(max_examples=300, deadline=None)
@given(tensors())
def test_unpack_matches_finn_and_inverts_pack(case):
    name, values = case
    packed = pack(values, datatype(name))
    ours = unpack(packed, datatype(name), values.shape[-1])
    finn = packed_bytearray_to_finnpy(packed, DataType[name], values.shape,
                                      reverse_inner=True, reverse_endian=True)
    np.testing.assert_array_equal(ours, values)
    np.testing.assert_array_equal(ours, finn)


@given(tensors(["INT32", "UINT32", "INT31", "UINT24"]))
def test_wide_types_round_trip(case):
    name, values = case
    packed = pack(values, datatype(name))
    np.testing.assert_array_equal(unpack(packed, datatype(name), values.shape[-1]), values)


@given(st.integers(1, 3), st.integers(1, 13), st.integers(0, 1000))
def test_words_round_trip(rows, nbytes, seed):
    data = np.random.default_rng(seed).integers(0, 256, (rows, nbytes), dtype=np.uint8)
    words = bytes_to_words(data)
    assert words.shape == (rows, (nbytes + 3) // 4)
    # little-endian words: byte 0 is the least significant byte of word 0
    assert int(words[0, 0]) & 0xFF == data[0, 0]
    np.testing.assert_array_equal(words_to_bytes(words, nbytes), data)


def test_out_of_range_values_are_refused():
    with pytest.raises(ValueError, match=r"outside INT4 \[-8, 7\]"):
        pack(np.array([8]), datatype("INT4"))
    with pytest.raises(ValueError, match="not supported"):
        datatype("FLOAT32")
