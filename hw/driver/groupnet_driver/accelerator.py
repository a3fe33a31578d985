"""``Accelerator``: run a deployed Group-Net accelerator on a PYNQ board or its simulator.

The API follows FINN's PYNQ driver and finn-examples' ``FINNExampleOverlay``
(``execute``, ``throughput_test``, ``batch_size``, ``fclk_mhz``, ``idt``/``odt``,
``ishape_normal``/``oshape_normal`` and their ``_folded``/``_packed`` forms,
``fold_input``/``pack_input``/``unpack_output``/``unfold_output``,
``copy_input_data_to_device``/``execute_on_buffers``/``copy_output_data_from_device``),
plus ``predict`` and ``validate``::

    from groupnet_driver import Accelerator
    accel = Accelerator("deploy/", batch_size=100)     # board if there is one, else sim
    scores = accel.execute(images)                     # (N, 1, 28, 28) uint8 -> (N, 10) int
    print(accel.validate())                            # accuracy on the shipped test images

A segmentation accelerator returns score maps: ``score_maps`` (N, classes, h, w) and
``segment`` (masks at the input size, upsampled and argmaxed on the host, in numpy);
``predict`` gives the masks and ``validate`` the pixel accuracy and mIoU. A detector's
``detect`` gives per image boxes, scores and classes (decoded, thresholded and NMS'd on the
host: ``detection.py``), and ``validate`` the COCO mAP (with pycocotools installed).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .backends import PynqBackend, SerialBackend, is_uart_spec, sim_backend
from .packing import pack, unpack
from .detection import coco_map, decode
from .segmentation import masks_from_scores, segmentation_metrics
from .spec import DriverError, IOSpec

BACKENDS = ("auto", "pynq", "serial", "sim")


def pynq_device_present() -> tuple[bool, str]:
    """Whether pynq is importable and sees a device (and why not)."""
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pynq import Device
            devices = Device.devices
    except ImportError:
        return False, "pynq is not installed"
    except Exception as err:            # pynq raises plain RuntimeErrors without a board
        return False, f"pynq found no device ({err})"
    return (bool(devices), "PYNQ device present" if devices else "pynq found no device")


class Accelerator:
    """A deployed accelerator. ``backend``: ``"auto"`` (the board when a PYNQ device and the
    bitfile are there, else the simulator; for a UART-shell build, e.g. ECP5: the board when
    ``port`` is given, else the simulator), ``"pynq"``, ``"serial"`` (a board behind the
    UART shell on ``port`` at ``baud``; needs pyserial) or ``"sim"``."""

    def __init__(self, deploy_dir: str | Path = ".", backend: str = "auto", batch_size: int = 1,
                 fclk_mhz: float | None = None, bitfile: str | Path | None = None,
                 device=None, download: bool = True, verbose: bool = True,
                 port=None, baud: int | None = None):
        self.dir = Path(deploy_dir)
        self.spec = IOSpec.load(self.dir / "io_spec.json")
        if backend not in BACKENDS:
            raise DriverError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self._check_batch(batch_size)
        self.fclk_mhz = float(fclk_mhz or self.spec.clock_mhz)
        if bitfile is not None and not Path(bitfile).is_file():
            raise DriverError(f"--bitfile {bitfile}: no such file (leave it out to use the "
                              "deploy folder's bitfile/groupnet-accel.bit)")
        bitfile = Path(bitfile) if bitfile else self.dir / "bitfile" / "groupnet-accel.bit"
        why = ""
        uart = is_uart_spec(self.spec)
        if backend == "auto" and uart:
            backend = "serial" if port is not None else "sim"
            why = "a port was given" if port is not None else "no --port given"
        if backend == "serial" and not uart:
            raise DriverError(f"backend 'serial': {self.spec.variant} was built for "
                              f"{self.spec.board}, which has no UART shell (use pynq or sim)")
        if backend == "pynq" and uart:
            raise DriverError(f"backend 'pynq': {self.spec.variant} was built for "
                              f"{self.spec.board} behind a UART shell (use serial or sim)")
        if backend == "auto":
            present, why = pynq_device_present()
            backend = "pynq" if present and bitfile.is_file() else "sim"
            if present and not bitfile.is_file():
                why = f"no bitfile at {bitfile}"
        if backend == "pynq":
            self.backend = PynqBackend(self.spec, bitfile, batch_size, self.fclk_mhz, device,
                                       download)
        elif backend == "serial":
            self.backend = SerialBackend(self.spec, port, baud, batch_size, self.fclk_mhz)
        else:
            self.backend = sim_backend(self.spec, self.dir / "sim", batch_size, self.fclk_mhz,
                                       verbose)
        self.backend_reason = self.backend.reason + (f" (chosen: {why})" if why else "")
        if verbose:
            print(f"groupnet_driver: {self.spec.variant} on backend '{self.backend.name}': "
                  f"{self.backend_reason}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ FINN-style API
    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def batch_size(self) -> int:
        return self.backend.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._check_batch(value)
        self.backend.allocate(value)

    @staticmethod
    def _check_batch(value) -> None:
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise DriverError(f"batch_size must be a positive integer, got {value!r}")

    def fold_input(self, images: np.ndarray) -> np.ndarray:
        """Model-shaped uint8 images (N, C, H, W) -> the folded stream shape."""
        spec = self.spec
        want = spec.model_input_shape[1:]
        if not isinstance(images, np.ndarray):
            raise DriverError(f"input must be a numpy array, got {type(images).__name__}")
        if images.ndim != len(want) + 1 or images.shape[1:] != want:
            raise DriverError(f"input shape {images.shape}: expected (N, {', '.join(map(str, want))})"
                              f" {spec.model_input_dtype} images (N <= batch_size)")
        if images.dtype != np.dtype(spec.model_input_dtype):
            raise DriverError(f"input dtype {images.dtype}: expected {spec.model_input_dtype} "
                              f"pixels (0..255); convert with images.astype(np.uint8)")
        if len(images) > self.batch_size:
            raise DriverError(f"batch of {len(images)} images is larger than the buffers "
                              f"(batch_size={self.batch_size}): set accel.batch_size = "
                              f"{len(images)} first, or pass fewer images")
        x = images.transpose(spec.host_transpose) if spec.host_transpose else images
        return np.ascontiguousarray(x).reshape(len(images), *spec.input.shape_folded[1:])

    def pack_input(self, folded: np.ndarray) -> np.ndarray:
        return pack(folded, self.spec.input.datatype)

    def unpack_output(self, packed: np.ndarray) -> np.ndarray:
        out = self.spec.output
        return unpack(packed, out.datatype, out.shape_folded[-1])

    def unfold_output(self, folded: np.ndarray) -> np.ndarray:
        return folded.reshape(len(folded), *self.spec.output.shape_normal[1:])

    def execute(self, images: np.ndarray) -> np.ndarray:
        """Raw class scores (integers; argmax = prediction) for up to ``batch_size`` images."""
        packed = self.pack_input(self.fold_input(images))
        out, self.last_run = self.backend.run(packed)
        return self.unfold_output(self.unpack_output(out))

    @property
    def is_segmentation(self) -> bool:
        return self.spec.task == "segmentation"

    @property
    def is_detection(self) -> bool:
        return self.spec.task == "detection"

    def score_maps(self, images: np.ndarray) -> np.ndarray:
        """Segmentation and detection: integer score maps (N, channels, h, w) for up to
        ``batch_size`` images (the accelerator's NHWC stream, transposed on the host, as
        the model's scores)."""
        if self.spec.host_output_transpose is None:
            raise DriverError(f"score_maps: {self.spec.variant} is a classifier; use "
                              "execute or predict")
        raw = self.execute(images).transpose(self.spec.host_output_transpose)
        if self.spec.score_scale == 1.0 and self.spec.score_bias == 0.0:
            return raw
        return raw * self.spec.score_scale + self.spec.score_bias

    def detect(self, images: np.ndarray, **options) -> list[dict]:
        """Detection: per image ``{"boxes" (n, 4) x0 y0 x1 y1, "scores", "classes"}``, for
        any number of images (in batches); ``options``: ``detection.decode``'s thresholds."""
        if not self.is_detection:
            raise DriverError(f"detect: {self.spec.variant} is not a detector")
        bs, out = self.batch_size, []
        for i in range(0, len(images), bs):
            out += decode(self.score_maps(images[i:i + bs]), self.spec.decode,
                          images.shape[-2:], **options)
        return out

    def segment(self, images: np.ndarray) -> np.ndarray:
        """Segmentation: predicted class masks (N, H, W) uint8 at the input size."""
        return masks_from_scores(self.score_maps(images), images.shape[-2:])

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted class indices (a segmentation net: masks), in batches of
        ``batch_size``."""
        if self.is_detection:
            return self.detect(images)
        bs = self.batch_size
        one = self.segment if self.is_segmentation else (
            lambda x: self.top_labels(self.execute(x)))
        return np.concatenate([one(images[i:i + bs]) for i in range(0, len(images), bs)])

    def throughput_test(self) -> dict:
        """One full batch of random pixels, timed (FINN's keys; on the sim backend the times
        are simulated cycles at ``fclk_mhz``, on a board they are measured)."""
        rng = np.random.default_rng(0)
        shape = (self.batch_size, *self.spec.model_input_shape[1:])
        images = rng.integers(0, 256, size=shape, dtype=np.uint8)
        t0 = time.perf_counter()
        folded = self.fold_input(images)
        t1 = time.perf_counter()
        packed = self.pack_input(folded)
        t2 = time.perf_counter()
        out, info = self.backend.run(packed)
        t3 = time.perf_counter()
        self.unfold_output(self.unpack_output(out))
        t4 = time.perf_counter()
        if self.backend.name == "sim":
            runtime = info["cycles"] / (self.fclk_mhz * 1e6)
            kind = "simulated: cycle-accurate RTL (Verilator) at fclk"
        else:
            runtime = info["seconds"]
            kind = "measured on the board"
        res = {"runtime[ms]": runtime * 1e3, "throughput[images/s]": self.batch_size / runtime,
               "DRAM_in_bandwidth[MB/s]": packed.nbytes / runtime / 1e6,
               "DRAM_out_bandwidth[MB/s]": out.nbytes / runtime / 1e6,
               "fclk[mhz]": self.fclk_mhz, "batch_size": self.batch_size,
               "fold_input[ms]": (t1 - t0) * 1e3, "pack_input[ms]": (t2 - t1) * 1e3,
               "unpack_output[ms]": (t4 - t3) * 1e3, "backend": self.backend.name,
               "kind": kind}
        if self.backend.name == "sim":
            done = info["frame_done_cycles"]
            if len(done) > 2:
                res["steady_cycles_per_frame"] = float(np.median(np.diff(done)[len(done) // 2:]))
                res["steady_throughput[images/s]"] = (self.fclk_mhz * 1e6
                                                      / res["steady_cycles_per_frame"])
            res["latency[us]"] = float(done[0]) / self.fclk_mhz
            res["simulation_wall_s"] = info["wall_seconds"]
        if "accel_cycles" in info:
            # behind the UART shell: the accelerator's own cycles per image, as the shell
            # counted them, beside the end-to-end rate the serial line allows
            cycles = float(np.median(info["accel_cycles"]))
            res["accelerator_cycles_per_image"] = cycles
            res["accelerator_latency[us]"] = cycles / info["accel_clk_hz"] * 1e6
            if self.backend.name == "serial":
                res["kind"] = "measured on the board, over the serial line"
            else:
                res["kind"] = ("simulated: the accelerator behind its UART shell, the serial "
                               "line bit by bit (cycle-accurate RTL at fclk)")
        return res

    # ------------------------------------------- finn-examples' driver API (FINNExampleOverlay)
    # Per-port methods with FINN's names (one input and one output: ind=0); shapes for
    # the current batch size, as FINN's driver reports them.
    def _port(self, ports: str, ind: int):
        if ind != 0:
            raise DriverError(f"{ports} index {ind}: this accelerator has one input and one "
                              "output (ind=0)")
        return self.spec.input if ports == "input" else self.spec.output

    def idt(self, ind: int = 0):
        """Input datatype (FINN's ``idt``), e.g. UINT8."""
        return self._port("input", ind).datatype

    def odt(self, ind: int = 0):
        return self._port("output", ind).datatype

    def ishape_normal(self, ind: int = 0) -> tuple[int, ...]:
        return (self.batch_size, *self._port("input", ind).shape_normal[1:])

    def oshape_normal(self, ind: int = 0) -> tuple[int, ...]:
        return (self.batch_size, *self._port("output", ind).shape_normal[1:])

    def ishape_folded(self, ind: int = 0) -> tuple[int, ...]:
        return (self.batch_size, *self._port("input", ind).shape_folded[1:])

    def oshape_folded(self, ind: int = 0) -> tuple[int, ...]:
        return (self.batch_size, *self._port("output", ind).shape_folded[1:])

    def ishape_packed(self, ind: int = 0) -> tuple[int, ...]:
        return (self.batch_size, *self._port("input", ind).shape_packed[1:])

    def oshape_packed(self, ind: int = 0) -> tuple[int, ...]:
        return (self.batch_size, *self._port("output", ind).shape_packed[1:])

    def copy_input_data_to_device(self, data: np.ndarray, ind: int = 0) -> None:
        """Packed input (``ishape_packed``) into the input buffer."""
        want = self.ishape_packed(ind)
        if data.shape != want or data.dtype != np.uint8:
            raise DriverError(f"input buffer data {data.shape} {data.dtype}: expected {want} "
                              "uint8 (pack_input(fold_input(images)))")
        self._ibuf = np.array(data, copy=True)

    def execute_on_buffers(self, asynch: bool = False, batch_size: int | None = None) -> None:
        """Run the accelerator on the input buffer (FINN's ``execute_on_buffers``; the run
        completes before it returns, also with ``asynch=True``)."""
        if getattr(self, "_ibuf", None) is None:
            raise DriverError("no input in the buffer: copy_input_data_to_device first")
        if batch_size not in (None, self.batch_size):
            raise DriverError(f"batch_size {batch_size}: the buffers hold {self.batch_size}")
        self._obuf, self.last_run = self.backend.run(self._ibuf)

    def copy_output_data_from_device(self, data: np.ndarray, ind: int = 0) -> None:
        """The output buffer (``oshape_packed``) into ``data``."""
        if getattr(self, "_obuf", None) is None:
            raise DriverError("no output yet: execute_on_buffers first")
        np.copyto(data, self._obuf.reshape(data.shape))

    # ------------------------------------------------------------------ validation set
    def validation_set(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The shipped test images, their labels and the compiler's expected raw outputs."""
        folder = self.dir / "validation"
        try:
            if (folder / "boxes.npy").is_file():      # detection: per-image boxes
                flat, counts = np.load(folder / "boxes.npy"), np.load(folder / "box_counts.npy")
                ends = np.cumsum(counts)
                labels = np.empty(len(counts), dtype=object)
                for i, (a, b) in enumerate(zip(ends - counts, ends)):
                    labels[i] = flat[a:b]
            else:
                labels = np.load(folder / "labels.npy")
            return (np.load(folder / "images.npy"), labels,
                    np.load(folder / "expected_outputs.npy"))
        except FileNotFoundError as err:
            raise DriverError(f"{err.filename} not found: deploy with validation images "
                              "(`groupnet deploy -n N`)") from None

    def validate(self, limit: int | None = None) -> dict:
        """Accuracy on the shipped images, and whether every output equals the compiler's
        (bit-exact with the PyTorch model)."""
        images, labels, expected = self.validation_set()
        images, labels, expected = images[:limit], labels[:limit], expected[:limit]
        bs, outs = self.batch_size, []
        t0 = time.perf_counter()
        for i in range(0, len(images), bs):
            outs.append(self.execute(images[i:i + bs]))
        seconds = time.perf_counter() - t0
        scores = np.concatenate(outs)
        n = len(images)
        bad = np.nonzero((scores.reshape(n, -1) != expected.reshape(n, -1)).any(axis=1))[0]
        result = {"variant": self.spec.variant, "dataset": self.spec.dataset,
                  "backend": self.backend.name, "n": int(n),
                  "bit_exact": bool(len(bad) == 0), "mismatched_images": bad[:20].tolist(),
                  "wall_seconds": seconds}
        if self.is_detection:
            maps = scores.transpose(self.spec.host_output_transpose) * self.spec.score_scale \
                + self.spec.score_bias
            dets = decode(maps, self.spec.decode, images.shape[-2:])
            quality = coco_map(dets, labels, len(self.spec.classes), images.shape[-2:])
            return {**result, "map50": quality["map50"], "map": quality["map"],
                    **({"note": quality["note"]} if "note" in quality else {})}
        if self.is_segmentation:
            masks = masks_from_scores(scores.transpose(self.spec.host_output_transpose),
                                      images.shape[-2:])
            quality = segmentation_metrics(masks, labels, len(self.spec.classes))
            return {**result, "pixel_accuracy": quality["pixel_accuracy"],
                    "miou": quality["miou"]}
        return {**result, "accuracy": float((self.top_labels(scores) == labels).mean())}

    def top_labels(self, outputs: np.ndarray) -> np.ndarray:
        """A classifier's predictions from its outputs: the first of the top-K labels an
        accelerator with a LabelSelect returns, else the argmax of the scores."""
        outputs = outputs.reshape(len(outputs), -1)
        return outputs[:, 0].astype(np.int64) if self.spec.output_labels \
            else outputs.argmax(axis=1)
