"""The board table: one place for every board the toolkit builds for.

Resources are the FPGA part's totals from AMD's product tables (BRAM counted in 18 Kb
halves, as FINN's estimates count them). ``finn_name`` is the board's key in finn-plus
(``finn.util.basic.pynq_part_map``), used by FINN's shell flow and driver generation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from groupnet.errors import UserError


class BoardError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class Board:
    name: str            # the toolkit's name (command line, builds/<board>/)
    finn_name: str       # finn-plus's board name
    part: str            # FPGA part
    lut: int
    ff: int
    bram18: int
    uram: int
    dsp: int
    clock_mhz: float     # default fabric clock for builds
    pynq: str            # PYNQ image the deploy package targets
    shell: str           # FINN shell flow
    axi_port_bits: int   # native AXI HP port width used by the DMA
    family: str          # for Yosys/estimates: "7series" or "ultrascale+"

    def as_dict(self) -> dict:
        return asdict(self)


_Z7020 = dict(part="xc7z020clg400-1", lut=53200, ff=106400, bram18=280, uram=0, dsp=220,
              family="7series", axi_port_bits=64)
_ZU3EG = dict(lut=70560, ff=141120, bram18=432, uram=0, dsp=360, family="ultrascale+",
              axi_port_bits=128)

BOARDS: dict[str, Board] = {b.name: b for b in [
    Board("pynq-z1", "Pynq-Z1", clock_mhz=100.0, pynq="3.0.1", shell="zynq_iodma", **_Z7020),
    Board("pynq-z2", "Pynq-Z2", clock_mhz=100.0, pynq="3.0.1", shell="zynq_iodma", **_Z7020),
    Board("ultra96-v2", "Ultra96-V2", part="xczu3eg-sbva484-1-i", clock_mhz=100.0,
          pynq="3.0.1", shell="zynq_iodma", **_ZU3EG),
    Board("kv260", "KV260_SOM", part="xck26-sfvc784-2LV-c", lut=117120, ff=234240,
          bram18=288, uram=64, dsp=1248, clock_mhz=100.0, pynq="3.0.1 (Kria-PYNQ)",
          shell="zynq_iodma", axi_port_bits=128, family="ultrascale+"),
    Board("zcu104", "ZCU104", part="xczu7ev-ffvc1156-2-e", lut=230400, ff=460800,
          bram18=624, uram=96, dsp=1728, clock_mhz=100.0, pynq="3.0.1",
          shell="zynq_iodma", axi_port_bits=128, family="ultrascale+"),
    Board("aup-zu3", "AUP-ZU3_8GB", part="xczu3eg-sfvc784-2-e", clock_mhz=100.0,
          pynq="3.1", shell="zynq_iodma", **_ZU3EG),
]}


def get_board(name: str) -> Board:
    key = name.lower().replace("_", "-")
    if key in BOARDS:
        return BOARDS[key]
    for board in BOARDS.values():
        if board.finn_name.lower() == name.lower():
            return board
    raise BoardError(f"unknown board '{name}': choose one of {', '.join(BOARDS)} "
                     "(`groupnet boards` lists them)")
