"""The framed UART protocol of ``hw/rtl/uart_shell.v``, written once for the host: the
``serial`` backend (a board on a USB-UART) and the ``sim`` backend of an ECP5 build (the
shell and accelerator in Verilator, the line simulated bit by bit) encode and decode every
frame here. Standard library and numpy only.

Frames (multi-byte fields little-endian, except the CRC)::

    request  = 0xA5 | cmd u8     | len u32 | payload (len bytes) | crc u16 (high byte first)
    response = 0x5A | status u8  | len u32 | payload (len bytes) | crc u16 (high byte first)

``crc``: CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no
final xor: ``binascii.crc_hqx(data, 0xFFFF)``) over the bytes after the magic byte up to
the end of the payload. Commands: ``INFER`` (payload: one image's packed input beats, the
bytes ``packing.pack`` makes, beat after beat; response: the packed output beats, then a
u32 with the accelerator's clock cycles for the image) and ``INFO`` (no payload; response:
the shell's parameters, ``ShellInfo``). Every request is answered with exactly one
response; an error (``STATUS``) has no payload.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .spec import DriverError

MAGIC_REQUEST = 0xA5
MAGIC_RESPONSE = 0x5A
CMD_INFER = 0x01
CMD_INFO = 0x02
PROTOCOL_VERSION = 1
HEADER_BYTES = 6                  # magic, cmd/status, u32 length
CRC_BYTES = 2
CYCLES_BYTES = 4                  # INFER: the run's clock cycles after the output beats
INFO_FORMAT = "<BBHHIIIIII"       # see ShellInfo
BITS_PER_BYTE_ON_LINE = 10        # 8N1: start bit, 8 data bits, stop bit

OK = 0x00
STATUS = {
    0x00: "ok",
    0x01: "bad magic (bytes outside a frame)",
    0x02: "unknown command",
    0x03: "bad length",
    0x04: "bad checksum",
    0x05: "timeout mid-frame (the line went quiet inside a frame)",
    0x06: "overrun (bytes arrived while a request was being served)",
    0x07: "accelerator timeout (no beat in or out; the shell reset it)",
}
E_MAGIC, E_COMMAND, E_LENGTH, E_CHECKSUM, E_TIMEOUT, E_OVERRUN, E_ACCEL = range(1, 8)


class ProtocolError(DriverError):
    """A response that is not a well-formed frame, or a shell that answered an error."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (the shell's checksum)."""
    return binascii.crc_hqx(bytes(data), crc)


def encode_request(cmd: int, payload: bytes = b"") -> bytes:
    """One request frame."""
    body = bytes([cmd]) + struct.pack("<I", len(payload)) + bytes(payload)
    return bytes([MAGIC_REQUEST]) + body + struct.pack(">H", crc16(body))


def encode_infer(packed_image: np.ndarray) -> bytes:
    """An INFER request for one image: its packed beats (``packing.pack``'s uint8 rows,
    one image: shape ``(..., bytes_per_beat)``), in stream order."""
    return encode_request(CMD_INFER, np.ascontiguousarray(packed_image, np.uint8).tobytes())


def encode_info() -> bytes:
    return encode_request(CMD_INFO)


@dataclass(frozen=True)
class Response:
    status: int
    payload: bytes

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def error(self) -> str:
        return STATUS.get(self.status, f"unknown status 0x{self.status:02x}")

    def check(self, what: str = "request") -> "Response":
        """Itself if ok, else a ProtocolError naming the shell's error."""
        if not self.ok:
            raise ProtocolError(f"the shell answered the {what} with error 0x{self.status:02x}: "
                                f"{self.error}", self.status)
        return self


def read_response(read: Callable[[int], bytes], max_payload: int = 1 << 24) -> Response:
    """Read one response frame with ``read(n)`` (a serial port's read, or a byte stream's):
    fewer bytes than asked means the line went quiet (a timeout)."""
    def exactly(n: int, what: str) -> bytes:
        data = read(n)
        if len(data) != n:
            raise ProtocolError(f"no complete response: {len(data)} of {n} bytes of its {what} "
                                "came (timeout; is the board programmed with this bitstream, "
                                "at this baud rate?)")
        return bytes(data)

    head = exactly(1, "header")
    if head[0] != MAGIC_RESPONSE:
        raise ProtocolError(f"response starts with 0x{head[0]:02x}, not 0x{MAGIC_RESPONSE:02x}: "
                            "not this shell, or the wrong baud rate")
    head += exactly(HEADER_BYTES - 1, "header")
    status, length = head[1], struct.unpack("<I", head[2:6])[0]
    if length > max_payload:
        raise ProtocolError(f"response length {length} is implausible (line noise?)")
    payload = exactly(length, "payload") if length else b""
    (crc,) = struct.unpack(">H", exactly(CRC_BYTES, "checksum"))
    if crc != crc16(head[1:] + payload):
        raise ProtocolError("response checksum mismatch (line noise, or the wrong baud rate)")
    return Response(status, payload)


def decode_responses(data: bytes) -> list[Response]:
    """Every response frame in a byte string, in order (``read_response`` on each)."""
    view, pos, out = memoryview(bytes(data)), 0, []

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = bytes(view[pos:pos + n])
        pos += len(chunk)
        return chunk

    while pos < len(view):
        out.append(read_response(read))
    return out


@dataclass(frozen=True)
class ShellInfo:
    """The INFO response: what the bitstream's shell was built with."""
    version: int
    flags: int
    in_width: int
    out_width: int
    in_beats: int
    out_beats: int
    clk_hz: int
    baud: int
    timeout_cycles: int
    design_id: int

    @classmethod
    def decode(cls, response: Response) -> "ShellInfo":
        response.check("INFO request")
        if len(response.payload) != struct.calcsize(INFO_FORMAT):
            raise ProtocolError(f"INFO payload of {len(response.payload)} bytes, expected "
                                f"{struct.calcsize(INFO_FORMAT)}: a different shell version")
        return cls(*struct.unpack(INFO_FORMAT, response.payload))

    def check(self, in_width: int, out_width: int, in_beats: int, out_beats: int,
              design_id: int | None = None) -> None:
        """A ProtocolError when the shell is not the one this accelerator was built with."""
        if self.version != PROTOCOL_VERSION:
            raise ProtocolError(f"the shell speaks protocol version {self.version}, this "
                                f"driver {PROTOCOL_VERSION}")
        want = (in_width, out_width, in_beats, out_beats)
        have = (self.in_width, self.out_width, self.in_beats, self.out_beats)
        if have != want:
            raise ProtocolError("the board's bitstream is another accelerator: its shell has "
                                "input/output widths and beats {} where this deploy folder "
                                "has {} (program the bitstream of this folder)".format(have, want))
        if design_id is not None and self.design_id != design_id:
            raise ProtocolError(f"the board's bitstream has design id 0x{self.design_id:08x}, "
                                f"this deploy folder 0x{design_id:08x}: program this "
                                "folder's bitstream")


def split_infer(response: Response, out_beats: int, out_bytes: int) -> tuple[np.ndarray, int]:
    """An INFER response -> (packed output beats ``(out_beats, out_bytes)`` uint8, the run's
    clock cycles)."""
    response.check("INFER request")
    want = out_beats * out_bytes + CYCLES_BYTES
    if len(response.payload) != want:
        raise ProtocolError(f"INFER response of {len(response.payload)} bytes, expected {want} "
                            f"({out_beats} beats x {out_bytes} bytes + {CYCLES_BYTES})")
    beats = np.frombuffer(response.payload[:-CYCLES_BYTES], np.uint8).reshape(out_beats,
                                                                              out_bytes)
    return beats.copy(), struct.unpack("<I", response.payload[-CYCLES_BYTES:])[0]


def frame_bytes(in_beats: int, in_bytes: int, out_beats: int, out_bytes: int
                ) -> tuple[int, int]:
    """Bytes on the line per image: (request, response)."""
    overhead = HEADER_BYTES + CRC_BYTES
    return (overhead + in_beats * in_bytes,
            overhead + out_beats * out_bytes + CYCLES_BYTES)


def line_seconds(n_bytes: int, baud: float) -> float:
    """Time ``n_bytes`` take on an 8N1 line at ``baud``."""
    return n_bytes * BITS_PER_BYTE_ON_LINE / baud
