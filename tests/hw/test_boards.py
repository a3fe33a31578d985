from finn.util.basic import pynq_native_port_width, pynq_part_map

from groupnet.hw.boards import BOARDS, BoardError, get_board

import pytest


@pytest.mark.parametrize("board", BOARDS.values(), ids=list(BOARDS))
def test_board_matches_finn(board):
    assert pynq_part_map[board.finn_name] == board.part
    assert pynq_native_port_width[board.finn_name] == board.axi_port_bits
    assert board.lut > 0 and board.bram18 > 0 and board.clock_mhz > 0


def test_lookup():
    assert get_board("Pynq-Z2") is BOARDS["pynq-z2"]
    assert get_board("AUP-ZU3_8GB") is BOARDS["aup-zu3"]
    with pytest.raises(BoardError, match="unknown board 'zedboard'.*groupnet boards"):
        get_board("zedboard")
