from finn.util.basic import pynq_native_port_width, pynq_part_map

from groupnet.hw.boards import BOARDS, BoardError, get_board

import pytest


XILINX = [b for b in BOARDS.values() if not b.is_ecp5]
ECP5 = [b for b in BOARDS.values() if b.is_ecp5]


@pytest.mark.parametrize("board", XILINX, ids=[b.name for b in XILINX])
def test_board_matches_finn(board):
    assert pynq_part_map[board.finn_name] == board.part
    assert pynq_native_port_width[board.finn_name] == board.axi_port_bits
    assert board.lut > 0 and board.bram18 > 0 and board.clock_mhz > 0


def test_lookup():
    assert get_board("Pynq-Z2") is BOARDS["pynq-z2"]
    assert get_board("AUP-ZU3_8GB") is BOARDS["aup-zu3"]
    with pytest.raises(BoardError, match="unknown board 'zedboard'.*groupnet boards"):
        get_board("zedboard")


@pytest.mark.parametrize("board", ECP5, ids=[b.name for b in ECP5])
def test_ulx3s_matches_amaranth_boards(board):
    """Part, package, speed and every pin as amaranth-boards' ULX3S platform has them."""
    from amaranth_boards import ulx3s
    size = board.name.split("-")[1].upper()
    platform = getattr(ulx3s, f"ULX3S_{size}_Platform")
    assert board.part == f"{platform.device}-{platform.speed}{platform.package}C"
    res = {(r.name, r.number): r for r in platform.resources}

    def pin(name, number=0, sub=None):
        ios = res[(name, number)].ios
        if sub:
            ios = next(io for io in ios if getattr(io, "name", None) == sub).ios
        return ios[0].names[0]
    want = {"clk_25mhz": pin("clk25"), "uart_rx": pin("uart", 0, "rx"),
            "uart_tx": pin("uart", 0, "tx"), "wifi_gpio0": pin("esp32", 0, "gpio0"),
            **{f"led[{i}]": pin("led", i) for i in range(8)}}
    assert dict(board.pins) == want
    assert board.board_clock_mhz == 25.0 and board.finn_part.startswith("xc7")
    assert board.lut_budget < board.lut or board.lut_budget == board.lut


def test_ecp5_resources_are_nextpnr_totals():
    """LUT4 / EBR / MULT18 as nextpnr-ecp5 counts them (measured: tests/hw/test_bitstream
    reads the 85F's from a routed design); the 12F at Lattice's nominal size."""
    assert [(b.lut, b.bram18, b.dsp) for b in ECP5] == [
        (12000, 32, 28), (24288, 56, 28), (43848, 108, 72), (83640, 208, 156)]
