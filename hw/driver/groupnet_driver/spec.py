"""The IO spec of one accelerator (``io_spec.json``, written by ``groupnet deploy`` from the
build: never a hand-copied shape table)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datatypes import IntType, datatype
from .packing import packed_bytes

SPEC_FORMAT = 1


class DriverError(RuntimeError):
    """A one-line, actionable error of the driver (bad input, missing file, no device)."""


@dataclass(frozen=True)
class Port:
    """One accelerator input or output, batch size 1 in every shape."""
    name: str
    dma: str                      # the IODMA instance in the block design (FINN's naming)
    datatype: IntType
    shape_normal: tuple[int, ...]
    shape_folded: tuple[int, ...]

    @property
    def shape_packed(self) -> tuple[int, ...]:
        return (*self.shape_folded[:-1], packed_bytes(self.shape_folded[-1], self.datatype))

    @property
    def beats(self) -> int:
        """Stream beats per frame."""
        return int(np.prod(self.shape_folded[1:-1]))

    @classmethod
    def from_json(cls, d: dict) -> "Port":
        return cls(d["name"], d["dma"], datatype(d["datatype"]), tuple(d["shape_normal"]),
                   tuple(d["shape_folded"]))


@dataclass(frozen=True)
class IOSpec:
    variant: str
    dataset: str
    classes: tuple[str, ...]
    board: str
    platform: str                 # "zynq-iodma" (Zynq-7000 and Zynq UltraScale+ boards)
    clock_mhz: float
    model_input_shape: tuple[int, ...]     # what users pass, e.g. NCHW (1, 1, 28, 28)
    model_input_dtype: str                 # "uint8"
    host_transpose: tuple[int, ...] | None  # model input -> accelerator input (NCHW -> NHWC)
    input: Port
    output: Port
    estimated_cycles_per_frame: int | None
    raw: dict
    task: str = "classification"          # "segmentation", "detection": score maps
    host_output_transpose: tuple[int, ...] | None = None   # accelerator output -> NCHW
    score_scale: float = 1.0              # raw output * scale + bias = the model's scores
    score_bias: float = 0.0
    decode: dict | None = None            # detection: detection.decode's parameters
    output_labels: bool = False           # the accelerator returns top-K labels (LabelSelect)

    @classmethod
    def load(cls, path: str | Path) -> "IOSpec":
        path = Path(path)
        if not path.is_file():
            raise DriverError(f"{path} not found: point the driver at a folder written by "
                              "`groupnet deploy`")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DriverError(f"{path} is not valid JSON ({err}): run `groupnet deploy` "
                              "again") from None
        if d.get("format") != SPEC_FORMAT:
            raise DriverError(f"{path}: IO spec format {d.get('format')!r}, this driver reads "
                              f"format {SPEC_FORMAT}: deploy again with the matching toolkit")
        if len(d["inputs"]) != 1 or len(d["outputs"]) != 1:
            raise DriverError(f"{path}: {len(d['inputs'])} inputs / {len(d['outputs'])} "
                              "outputs; this driver handles one of each")
        host = d.get("host_transpose")
        return cls(d["variant"], d["dataset"], tuple(d.get("classes") or ()), d["board"],
                   d["platform"], float(d["clock_mhz"]), tuple(d["model_input_shape"]),
                   d["model_input_dtype"], tuple(host) if host else None,
                   Port.from_json(d["inputs"][0]), Port.from_json(d["outputs"][0]),
                   d.get("estimated_cycles_per_frame"), d, d.get("task", "classification"),
                   tuple(d["host_output_transpose"]) if d.get("host_output_transpose")
                   else None, float(d.get("score_scale", 1.0)), float(d.get("score_bias", 0.0)),
                   d.get("decode"), bool(d.get("output_labels", False)))
