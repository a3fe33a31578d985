"""The board table: one place for every board the toolkit builds for.

Resources are the FPGA part's totals from AMD's product tables (BRAM counted in 18 Kb
halves, as FINN's estimates count them). ``finn_name`` is the board's key in finn-plus
(``finn.util.basic.pynq_part_map``), used by FINN's shell flow and driver generation.

Lattice ECP5 boards (ULX3S) have no FINN name and no PYNQ: their bitstreams come from the
open flow (``hw/ecp5.py``, ``groupnet bitstream``) and their host talks to the accelerator
over the board's USB-UART. Their ``lut`` counts LUT4s, ``bram18`` the 18 Kb EBR blocks
(DP16KD), ``dsp`` the MULT18X18D multipliers; the totals are nextpnr-ecp5's device
totals (``tests/hw/test_boards.py`` checks them against nextpnr, the pins against
amaranth-boards' ULX3S platform). FINN's estimators only know Xilinx parts: an ECP5 build
estimates with ``finn_part`` (a 7-series part, LUT6) and folds to the board's budget with
the LUT6 -> LUT4 factor :data:`LUT4_PER_LUT6`.
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
    family: str          # for Yosys/estimates: "7series", "ultrascale+" or "ecp5"
    # ECP5 only: the part FINN's estimators see, nextpnr's device/package, and the pins
    proxy_part: str = ""
    pins: tuple[tuple[str, str], ...] = ()    # (port, site): clock, UART, LEDs, ...
    board_clock_mhz: float = 0.0              # the oscillator on the clock pin

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def is_ecp5(self) -> bool:
        return self.family == "ecp5"

    @property
    def finn_part(self) -> str:
        """The part handed to FINN (its estimators and code generators know Xilinx only)."""
        return self.proxy_part or self.part

    @property
    def lut_budget(self) -> float:
        """The board's LUTs in FINN's unit (LUT6): what folding to a budget compares with."""
        return self.lut / LUT4_PER_LUT6 if self.is_ecp5 else float(self.lut)


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


# Yosys' synth_ecp5 LUT4s (a CCU2C carry cell counted as 2 LUT4, a DPR16X4 LUT-RAM as 2;
# UART shell included) over FINN's LUT estimate for the 7-series proxy, measured here on the
# demo accelerator (groupnet_cnv_s_k2): 0.79 at its fast folding for the 85F (33,057 LUT6
# est.), 1.7 at the slow folding that FINN's estimate fits into a 12F (8,387 est. -> 14,250
# LUT4: deep FIFOs and sliding windows weigh more there). The larger one is the budget's
# factor, so that a folding for a small part is not made too large; `groupnet bitstream`
# checks the synthesized design against the part in any case.
LUT4_PER_LUT6 = 1.7

# ULX3S: pins from amaranth-boards' ULX3S platform (tests/hw/test_boards.py compares):
# 25 MHz oscillator, the FT231X USB-UART (FPGA rx M1, tx L4), 8 LEDs, and the ESP32's
# GPIO0 held high so that the ESP32 does not reset the board.
_ULX3S_PINS = (("clk_25mhz", "G2"), ("uart_rx", "M1"), ("uart_tx", "L4"),
               *((f"led[{i}]", p) for i, p in enumerate("B2 C2 C1 D2 D1 E2 E1 H3".split())),
               ("wifi_gpio0", "L2"))
_ECP5 = dict(finn_name="", ff=0, uram=0, pynq="- (USB-UART host)", shell="uart",
             axi_port_bits=0, family="ecp5", proxy_part="xc7z020clg400-1",
             pins=_ULX3S_PINS, board_clock_mhz=25.0, clock_mhz=100.0)
# nextpnr-ecp5 device totals (LUT4 with one FF each, EBR, MULT18X18D); the 12F is the 25F
# die in nextpnr's database (it reports the 25F's totals): Lattice's nominal 12K LUT4, 32 EBR
_ECP5_PARTS = {"12f": (12000, 32, 28), "25f": (24288, 56, 28), "45f": (43848, 108, 72),
               "85f": (83640, 208, 156)}
for _size, (_lut, _ebr, _dsp) in _ECP5_PARTS.items():
    BOARDS[f"ulx3s-{_size}"] = Board(f"ulx3s-{_size}", part=f"LFE5U-{_size.upper()}-6BG381C",
                                     lut=_lut, bram18=_ebr, dsp=_dsp,
                                     **{**_ECP5, "ff": _lut})


def get_board(name: str) -> Board:
    key = name.lower().replace("_", "-")
    if key in BOARDS:
        return BOARDS[key]
    for board in BOARDS.values():
        if board.finn_name.lower() == name.lower():
            return board
    raise BoardError(f"unknown board '{name}': choose one of {', '.join(BOARDS)} "
                     "(`groupnet boards` lists them)")
