"""``groupnet deploy BUILD -o DIR``: a self-contained folder to copy onto a PYNQ board.

    DIR/driver.py, DIR/groupnet_driver/   the driver (numpy + pynq; FINN-style API and flags)
    DIR/io_spec.json                      shapes, datatypes, folding, packing: from the build
    DIR/validation/*.npy                  test images, labels, the compiler's expected outputs
    DIR/sim/                              RTL + harness of the simulator backend (Verilator)
    DIR/bitfile/groupnet-accel.{bit,hwh}  when a Vivado build produced them
    DIR/README.md                         how to run it, what was tested where

For an ECP5 build (``ulx3s-*``) the folder is for the host the board's USB-UART is plugged
into: ``DIR/bitstream/<name>.bit`` (from ``groupnet bitstream``) with the command that
programs it (openFPGALoader), ``io_spec.json`` says ``platform: ecp5-uart``, the driver's
``serial`` backend talks to the UART shell (``hw/rtl/uart_shell.v``) and its ``sim``
backend runs the same shell + accelerator in Verilator, the line bit by bit at the board's
clocks per bit, through the same protocol code.

``hw`` does not read datasets: the caller passes the validation images and labels.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from groupnet.errors import UserError
from groupnet.outdir import check_output, output_folder

from ..context import ESTIMATED, Build, as_build
from ..topology import base_op
from ..driver.groupnet_driver.spec import SPEC_FORMAT

DRIVER = Path(__file__).parents[1] / "driver"      # hw/driver: shipped as it is


class DeployError(UserError, RuntimeError):
    pass


NEEDS = (*ESTIMATED, "parent.onnx")


def io_spec(build: "Build | str | Path") -> dict:
    """The IO spec of a build: what the host sends and gets back, read from its graphs."""
    build = as_build(build, need=NEEDS, error=DeployError)
    build_dir = build.root
    parent, dataflow, est = build.parent(), build.dataflow(), build.estimates()
    host = [n for n in parent.graph.node if n.op_type != "StreamingDataflowPartition"]
    g_in = parent.graph.input[0].name
    # an MLP's input flatten: the driver reshapes to the stream's folded shape anyway
    host = [n for n in host if not (n.op_type in ("Reshape", "Flatten") and n.input[0] == g_in
                                    and _is_flatten(parent, n))]
    if any(n.op_type != "Transpose" for n in host) or len(host) > 2:
        raise DeployError(f"{build_dir / 'parent.onnx'}: host-side nodes "
                          f"{[n.name for n in host]}; the driver runs only the input flatten "
                          "and the input and output transposes on the host")
    g_out = parent.graph.output[0].name
    perm = out_perm = None
    for node in host:
        node_perm = [int(v) for a in node.attribute if a.name == "perm" for v in a.ints]
        if node.input[0] == g_in:
            perm = node_perm
        elif node.output[0] == g_out:
            out_perm = node_perm
        else:
            raise DeployError(f"{node.name} is neither on the graph input nor its output")
    first = getCustomOp(dataflow.find_consumer(dataflow.graph.input[0].name))
    last_node = dataflow.find_producer(dataflow.graph.output[0].name)
    last = getCustomOp(last_node)
    labels = base_op(last_node.op_type) == "LabelSelect"

    def port(tensor: str, dma: str, folded) -> dict:
        dt = dataflow.get_tensor_datatype(tensor)
        folded = [int(v) for v in folded]
        return {"name": tensor, "dma": dma, "datatype": dt.name,
                "shape_normal": list(dataflow.get_tensor_shape(tensor)),
                "shape_folded": folded,
                "shape_packed": [*folded[:-1], (folded[-1] * dt.bitwidth() + 7) // 8]}

    meta = {p.key: p.value for p in parent.model.metadata_props}
    task = meta.get("groupnet.task") or ("segmentation" if out_perm else "classification")
    df_meta = {p.key: p.value for p in dataflow.graph.metadata_props}
    in_dt = parent.get_tensor_datatype(g_in).name
    if in_dt != "UINT8":
        raise DeployError(f"{build_dir}: model input datatype {in_dt}; the driver takes "
                          "uint8 pixels")
    return {
        "format": SPEC_FORMAT,
        # a model from elsewhere (e.g. FINN's): named after its file
        "variant": meta.get("groupnet.variant") or Path(build.config.model).stem,
        "dataset": meta.get("groupnet.dataset", "user images"),
        "classes": json.loads(meta.get("groupnet.classes", "[]")),
        "board": build.board.name, "part": build.board.part,
        "platform": "zynq-iodma",
        "clock_mhz": build.clock_mhz,
        "model_input_shape": list(parent.get_tensor_shape(g_in)),
        "model_input_dtype": "uint8",
        "host_transpose": list(perm) if perm else None,
        "inputs": [port(dataflow.graph.input[0].name, "idma0", first.get_folded_input_shape())],
        "outputs": [port(dataflow.graph.output[0].name, "odma0",
                         last.get_folded_output_shape())],
        "task": task,
        "output_labels": labels,
        "output_meaning": (f"the top-{last.get_nodeattr('K')} class labels, best first (FINN's "
                           "LabelSelect)" if labels else
                           "raw integer class scores (argmax = prediction; the positive "
                           "logit scale is not applied)" if task == "classification" else
                           "raw integer score per class and map cell (NHWC stream); the host "
                           "transposes to NCHW, upsamples to the input size and takes the "
                           "argmax (groupnet_driver.segmentation)"),
        "host_output_transpose": out_perm,
        # raw accelerator values -> the model's integer scores (XNOR popcount correction)
        "score_scale": float(df_meta.get("groupnet.score_scale") or 1.0),
        "score_bias": float(df_meta.get("groupnet.score_bias") or 0.0),
        "decode": json.loads(meta["groupnet.decode"]) if "groupnet.decode" in meta else None,
        "model_output_shape": list(parent.get_tensor_shape(g_out)),
        "model_output": g_out,
        "estimated_cycles_per_frame": int(est["max_cycles"]),
        "estimated_latency_cycles": int(est.get("latency_cycles") or 0),
        "estimated_fps": est.get("fps"),
    }


def _is_flatten(model, node) -> bool:
    """A Reshape/Flatten of the batch-1 input to (1, everything): row-major, so the same
    bytes as the stream the driver packs."""
    shape = model.get_tensor_shape(node.output[0])
    return shape is not None and len(shape) == 2 and shape[0] == 1


def _predictions(spec: dict, outputs: np.ndarray) -> np.ndarray:
    outputs = outputs.reshape(len(outputs), -1)
    return outputs[:, 0] if spec["output_labels"] else outputs.argmax(axis=1)


def _simulation_model(build: "Build", out: Path) -> dict:
    """Stitched RTL + harness into ``out`` (relative paths: the folder moves)."""
    from ..sim.stitch import stitch
    from ..sim.verilator import HARNESS
    depths = build.fifo_depths()
    with build.finn():
        design = stitch(build.dataflow(), out, build.part, build.clock_period_ns, depths,
                        shallow_fifos=not depths,   # as `groupnet sim`
                        stats=False)                # the driver reads no counters
    rtl = out / "rtl"
    rtl.mkdir(exist_ok=True)
    sources = []
    for src in design.sources:
        src = Path(src).resolve()
        if out.resolve() in src.parents:
            sources.append(str(src.relative_to(out.resolve())))
        else:
            shutil.copy2(src, rtl / src.name)
            sources.append(f"rtl/{src.name}")
    shutil.copy2(HARNESS, out / HARNESS.name)
    desc = {"top": design.top, "sources": sources, "harness": HARNESS.name,
            "fifo_depths": "sized by simulation" if depths else "default (2)"}
    (out / "sim.json").write_text(json.dumps(desc, indent=2) + "\n")
    return desc


def _behind_the_shell(out: Path, desc: dict, clock_mhz: float, uart: dict) -> dict:
    """An ECP5 folder's simulator: the UART shell + accelerator (``uart_sim_top``), the line
    simulated bit by bit at the board's clocks per bit."""
    from ..rtl.layers import RTL_DIR
    from ..driver.groupnet_driver.backends import shell_shape
    from ..driver.groupnet_driver.simulator import (UART_HARNESS, UART_RTL, UART_TOP,
                                                   uart_sim_params)
    from ..driver.groupnet_driver.spec import IOSpec
    sim_src = Path(__file__).resolve().parents[1] / "sim"
    for name in UART_RTL:
        shutil.copy2(RTL_DIR / name, out / "rtl" / name)
    shutil.copy2(sim_src / "uart_sim_top.v", out / "uart_sim_top.v")
    shutil.copy2(sim_src / UART_HARNESS, out / UART_HARNESS)
    shape = shell_shape(IOSpec.load(out.parent / "io_spec.json"))
    params = uart_sim_params(**shape, clks_per_bit=round(clock_mhz * 1e6 / uart["baud"]),
                             design_id=uart["design_id"])
    desc.update(top=UART_TOP, harness=UART_HARNESS, shell="uart", params=params,
                sources=[*desc["sources"], *[f"rtl/{n}" for n in UART_RTL], "uart_sim_top.v"])
    (out / "sim.json").write_text(json.dumps(desc, indent=2) + "\n")
    return desc


def _ecp5_uart(build: "Build") -> dict:
    """The UART shell's line rate and design id, as the bitstream has them."""
    from ..bitstream import DEFAULT_BAUD, design_id
    rep = (json.loads(build.paths.bitstream_report.read_text())
           if build.paths.bitstream_report.is_file() else {})
    return {"baud": rep.get("uart", {}).get("baud", DEFAULT_BAUD), "design_id": design_id(build),
            "clock_mhz": rep.get("pll_clock_mhz", build.clock_mhz)}


def deploy(build: "Build | str | Path", out: str | Path, images: np.ndarray,
           labels: np.ndarray, force: bool = False, progress: bool = False) -> dict:
    """Write the deploy folder; ``images``/``labels``: the validation set (uint8 NCHW);
    ``progress``: a bar over the expected outputs (Python execution, image by image)."""
    build, out = as_build(build, need=NEEDS, error=DeployError), Path(out)
    existing = check_output(out, "deploy", option="-o", inputs=(build.root,))
    if existing and not force:
        raise DeployError(f"{out} already holds a deploy folder: pass --force to replace it")
    _check_labels(io_spec(build), labels)
    with output_folder(out, "deploy", replace=existing, option="-o", build=str(build.root)):
        return _write_deploy(build, out, images, labels, progress)


def _check_labels(spec: dict, labels: np.ndarray) -> None:
    """Class labels (or mask values, 255 void) within the model's classes: one line."""
    n = len(spec["classes"])
    if not n or labels.dtype == object or not len(labels):
        return
    values = np.asarray(labels)
    values = values[values != 255] if spec["task"] == "segmentation" else values
    if len(values) and (values.min() < 0 or values.max() >= n):
        raise DeployError(f"labels {int(values.min())}..{int(values.max())} for a model of "
                          f"{n} classes (0..{n - 1}); pass the labels of its dataset")


def _write_deploy(build: "Build", out: Path, images: np.ndarray, labels: np.ndarray,
                  progress: bool = False) -> dict:
    build_dir = build.root
    spec = io_spec(build)
    ecp5 = build.board.is_ecp5
    if ecp5:
        spec.update(platform="ecp5-uart", uart=_ecp5_uart(build))
    (out / "io_spec.json").write_text(json.dumps(spec, indent=2) + "\n")
    shutil.copytree(DRIVER / "groupnet_driver", out / "groupnet_driver",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(DRIVER / "driver.py", out / "driver.py")
    sim = _simulation_model(build, out / "sim")
    if ecp5:
        sim = _behind_the_shell(out / "sim", sim, spec["uart"]["clock_mhz"], spec["uart"])
        bitfile = _copy_ecp5_bitstream(build, out / "bitstream")
    else:
        bitfile = _copy_bitfile(build_dir, out / "bitfile")
    from ..sim.run import reference_outputs
    expected = reference_outputs(build, images, "expected outputs" if progress else None)
    val = out / "validation"
    val.mkdir()
    np.save(val / "images.npy", np.ascontiguousarray(images, dtype=np.uint8))
    if labels.dtype == object:           # detection: per-image boxes
        flat = [np.asarray(b, np.float32).reshape(-1, 5) for b in labels]
        np.save(val / "boxes.npy", np.concatenate(flat) if flat else np.zeros((0, 5)))
        np.save(val / "box_counts.npy", np.asarray([len(b) for b in flat], np.int64))
    else:
        np.save(val / "labels.npy", np.asarray(labels, dtype=np.int64 if labels.ndim == 1
                                               else np.uint8))
    np.save(val / "expected_outputs.npy", expected)
    (out / "README.md").write_text(_readme_ecp5(spec, bitfile, len(images)) if ecp5 else
                                   _readme(spec, bitfile is not None, len(images)))
    if spec["task"] == "detection":
        from ..driver.groupnet_driver.detection import coco_map, decode
        maps = expected.reshape(len(images), *spec["outputs"][0]["shape_normal"][1:])
        maps = maps.transpose(spec["host_output_transpose"]) * spec["score_scale"] \
            + spec["score_bias"]
        dets = decode(maps, spec["decode"], images.shape[-2:])
        expected_quality = {"validation_map50_expected": coco_map(
            dets, labels, len(spec["classes"]), images.shape[-2:])["map50"]}
    elif spec["task"] == "segmentation":
        from ..driver.groupnet_driver.segmentation import masks_from_scores, segmentation_metrics
        maps = expected.reshape(len(images), *spec["outputs"][0]["shape_normal"][1:])
        masks = masks_from_scores(maps.transpose(spec["host_output_transpose"]),
                                  images.shape[-2:])
        expected_quality = {"validation_miou_expected": segmentation_metrics(
            masks, labels, len(spec["classes"]))["miou"]}
    else:
        expected_quality = {"validation_accuracy_expected":
                            float((_predictions(spec, expected) == labels).mean())}
    return {"out": str(out), "variant": spec["variant"], "board": spec["board"],
            "bitfile": str(bitfile) if bitfile else None, "validation_images": len(images),
            **expected_quality,
            "sim_sources": len(sim["sources"])}


def _copy_bitfile(build_dir: Path, dest: Path) -> Path | None:
    """FINN's bitfile + hwh (``BUILD/finn/bitfile/*.bit``), renamed to one basename: PYNQ
    finds the .hwh by the bitfile's name."""
    found = sorted((build_dir / "finn").glob("bitfile/*.bit"))
    if not found:
        return None
    hwh = found[0].with_suffix(".hwh")
    if not hwh.is_file():
        raise DeployError(f"{hwh} not found next to {found[0]}: the Vivado build is incomplete")
    dest.mkdir(parents=True)
    shutil.copy2(found[0], dest / "groupnet-accel.bit")
    shutil.copy2(hwh, dest / "groupnet-accel.hwh")
    return dest / "groupnet-accel.bit"


def _copy_ecp5_bitstream(build: "Build", dest: Path) -> Path | None:
    """``groupnet bitstream``'s .bit (timing met, or kept on request), if there is one."""
    rep = (json.loads(build.paths.bitstream_report.read_text())
           if build.paths.bitstream_report.is_file() else {})
    if not rep.get("bitstream"):
        return None
    dest.mkdir(parents=True)
    src = build.root / rep["bitstream"]
    shutil.copy2(src, dest / src.name)
    shutil.copy2(build.paths.bitstream_report, dest / "bitstream.json")
    return dest / src.name


def _readme_ecp5(spec: dict, bit: Path | None, n_val: int) -> str:
    board = (f"`bitstream/{bit.name}` is this accelerator with its UART shell, made with the "
             "open tools (`groupnet bitstream`; post-route timing in `bitstream/bitstream."
             "json`). It has not been run on a board by this toolkit's tests." if bit else
             "**No bitstream**: run `groupnet bitstream BUILD` and deploy again for a board; "
             "this folder runs on the simulator backend only.")
    return f"""# {spec['variant']} on {spec['board']} ({spec['dataset']})

{board}

Program the ULX3S (volatile, over its USB port), then run the driver on the host it is
plugged into (Python 3 with numpy and pyserial):

    openFPGALoader -b ulx3s bitstream/{bit.name if bit else 'NAME.bit'}
    python3 driver.py --backend serial --port /dev/ttyUSB0 --exec_mode validate   # {n_val} test images

The host talks to the accelerator through the UART shell at {spec['uart']['baud']:,} baud:
a framed protocol (length, payload, CRC-16; a bad frame is answered with an error code);
the line, not the accelerator, bounds the images per second (docs/deploy.md).

`--backend sim` runs the same shell + accelerator in Verilator (`sim/`, the line simulated
bit by bit; needs `verilator` and g++), through the same protocol code.
"""


def _readme(spec: dict, has_bitfile: bool, n_val: int) -> str:
    shape = "x".join(map(str, spec["model_input_shape"][1:]))
    board = ("`bitfile/groupnet-accel.bit` (+ `.hwh`) is the Vivado build of this accelerator."
             if has_bitfile else
             "**No bitfile**: this build ran without Vivado, so this folder runs on the "
             "simulator backend only; build with Vivado and deploy again for a board.")
    return f"""# {spec['variant']} on {spec['board']} ({spec['dataset']})

{board}

On the board (PYNQ image with Python 3 and numpy; run as root for the PL):

    sudo python3 driver.py --exec_mode validate            # accuracy on {n_val} test images
    sudo python3 driver.py --exec_mode throughput_test --batchsize 1000

From Python or a notebook (the same code runs on a laptop against the simulator):

    from groupnet_driver import Accelerator
    accel = Accelerator(".", batch_size=100)     # backend 'auto': board if present, else sim
    scores = accel.execute(images)               # (N, {shape.replace('x', ', ')}) uint8 -> (N, classes) int

`--backend sim` (or `Accelerator(..., backend="sim")`) runs the cycle-accurate Verilator
model in `sim/` (needs `verilator` and g++; compiled once on first use). `io_spec.json`
holds the shapes, datatypes and packing, generated from the build.
"""
