"""The integer datatypes of FINN's stream interfaces, by name (numpy only).

``BIPOLAR`` (-1/+1, sent as bit 0/1), ``BINARY`` (0/1), ``UINTn`` and ``INTn`` (two's
complement), n <= 32: what a Group-Net accelerator's inputs and outputs use. The names
are FINN's (qonnx ``DataType``), so an IO spec written by the compiler reads the same here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class IntType:
    name: str
    bits: int
    signed: bool
    bipolar: bool = False

    @property
    def min(self) -> int:
        if self.bipolar:
            return -1
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        if self.bipolar:
            return 1
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


def datatype(name: str) -> IntType:
    """``IntType`` for a FINN datatype name; a clear error for anything else."""
    if name == "BIPOLAR":
        return IntType(name, 1, True, bipolar=True)
    if name == "BINARY":
        return IntType(name, 1, False)
    match = re.fullmatch(r"(U?)INT(\d+)", name)
    if match and 1 <= int(match.group(2)) <= 32:
        return IntType(name, int(match.group(2)), signed=match.group(1) == "")
    raise ValueError(f"datatype {name!r} is not supported by the driver (BIPOLAR, BINARY, "
                     "UINTn and INTn with n <= 32 are)")
