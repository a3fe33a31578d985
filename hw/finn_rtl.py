"""This project's RTL (``hw/rtl``) as FINN RTL layer variants, so that FINN's Vivado flow
(PrepareIP -> CreateStitchedIP -> synthesis) instantiates the very modules, parameters and
memory contents that ``groupnet sim`` checks in Verilator.

FINN picks HLS or RTL per layer in ``SpecializeLayers``; the XNOR-popcount MVAU exists
only as ``MVAU_hls`` there. :class:`UseGroupnetRTL` (build option ``rtl_layers: groupnet``)
turns every layer this RTL implements into a variant below. The build applies it at the
end of the ``folding`` step, not right after ``specialize_layers``: FINN's ``SetFolding``
picks the layers it folds by op_type (``MVAU_hls``, ``Thresholding_rtl``, ...) and would
leave the variants at PE = SIMD = 1; after folding, both settings give the same folding.

==============================  ==================================  ====================
variant (op_type)               module (hw/rtl)                     replaces
==============================  ==================================  ====================
MVAU_groupnet_rtl               mvau_stream.v (XNOR or int x +-1)   MVAU_hls
Thresholding_groupnet_rtl       thresholding_stream.v               Thresholding_rtl/hls
DuplicateStreams_groupnet_rtl   duplicate_streams.v                 DuplicateStreams_hls
ElementwiseAdd_groupnet_rtl     elementwise_add.v (stream + stream) ElementwiseAdd_hls/rtl
Pool_groupnet_rtl               pool_max.v (MaxPool)                Pool_hls
FMPadding_groupnet_rtl          fmpadding_stream.v                  FMPadding_rtl/hls
ConvolutionInputGenerator_...   sliding_window.v (M = 1)            ConvolutionInputGenerator_rtl
==============================  ==================================  ====================

Why the variants live in FINN's own domain (``finn.custom_op.fpgadataflow.rtl``): FINN's
``PrepareIP``, ``ReplaceVerilogRelPaths``, ``CreateStitchedIP``, ``SetExecMode`` and the
cycle analyses select nodes with ``is_rtl_node``, which compares the domain string
exactly; a node in a domain of our own (``groupnet.hw...``) would be skipped by PrepareIP
and refused by CreateStitchedIP ("is not an fpgadataflow node"). qonnx resolves a domain
by importing it as a module and reading its ``custom_op`` dict, so the variants are
added to ``finn.custom_op.fpgadataflow.rtl.custom_op`` (:func:`register`, done when this
module is imported; a process that loads a model holding them must import it first).

Each variant keeps every attribute of the node it replaces (names too, so folding files
still apply) and records the replaced op in ``finn_variant``: resource estimates stay
FINN's analytical model of that variant (this RTL is not synthesized here). Python
execution is the base op's (unchanged, bit-exact); FINN's rtlsim needs Vivado's
simulator, so these nodes are simulated by ``groupnet sim`` (Verilator) instead.
The Vivado path (IP packaging, stitching, synthesis) is untested here: no Vivado.
"""

from __future__ import annotations

import re
from pathlib import Path

from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from finn.custom_op.fpgadataflow.convolutioninputgenerator import ConvolutionInputGenerator
from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams
from finn.custom_op.fpgadataflow.elementwise_binary import ElementwiseAdd
from finn.custom_op.fpgadataflow.fmpadding import FMPadding
from finn.custom_op.fpgadataflow.matrixvectoractivation import MVAU
from finn.custom_op.fpgadataflow.pool import Pool
from finn.custom_op.fpgadataflow.rtl.convolutioninputgenerator_rtl import (
    ConvolutionInputGenerator_rtl)
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from finn.custom_op.fpgadataflow.thresholding import Thresholding

from groupnet.errors import UserError

from .rtl.layers import LAYERS, LayerRTL, UnsupportedLayer, layer_rtl, why_not
from .topology import base_op

RTL_DOMAIN = "finn.custom_op.fpgadataflow.rtl"
FINN_DOMAINS = {"_hls": "finn.custom_op.fpgadataflow.hls", "_rtl": RTL_DOMAIN}
SUFFIX = "_groupnet_rtl"
MEM_REF = "./"        # memory files beside the wrapper; FINN makes "./" absolute when stitching
ESTIMATORS = ("lut_estimation", "bram_estimation", "uram_estimation", "dsp_estimation",
              "bram_efficiency_estimation", "uram_efficiency_estimation")


class GroupnetRTLError(UserError, RuntimeError):
    """A node that cannot be generated as this project's RTL (the message says why)."""


def _attr(inst, name: str, default=None):
    try:
        return inst.get_nodeattr(name)
    except AttributeError:
        return default


class GroupnetRTL(RTLBackend):
    """What every variant shares: HDL generation (a copy of the module, its memory files
    and a wrapper with FINN's port names), the Vivado IPI commands, Python execution and
    FINN's resource estimates. ``HW_OP``: the FINN base op (its Python execution and
    attributes); ``DEFAULT_VARIANT``: what SpecializeLayers would have chosen."""

    HW_OP: type
    DEFAULT_VARIANT: str

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        # the FINN implementation this node replaced (its resource estimates are used)
        attrs["finn_variant"] = ("s", False, "")
        return attrs

    @classmethod
    def interface_problem(cls, inst) -> str | None:
        """Why the node's interface settings rule this RTL out (None: they don't)."""
        if _attr(inst, "runtime_writeable_weights", 0):
            return "runtime-writeable parameters need FINN's AXI-lite variant"
        return None

    # ------------------------------------------------------------------ HDL generation
    @property
    def module(self) -> str:
        return LAYERS[base_op(self.onnx_node.op_type)][0]

    def _core_name(self) -> str:
        return f"{self.get_nodeattr('gen_top_module')}_{self.module}"

    def generate_hdl(self, model: ModelWrapper, fpgapart: str, clk: float) -> None:
        """Write into ``code_gen_dir_ipgen``: ``<node>_<module>.v`` (hw/rtl/<module>.v with
        the module renamed per node, so that the stitched design declares each module
        once), its memory files, and ``<node>.v``, the wrapper with FINN's ports."""
        node = self.onnx_node
        problem = self.interface_problem(self)
        if problem is not None:
            raise GroupnetRTLError(f"node {node.name} ({node.op_type}): {problem}; set "
                                   "rtl_layers: finn or change the node's settings")
        out = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        out.mkdir(parents=True, exist_ok=True)
        try:
            rtl = layer_rtl(model, node, self, base_op(node.op_type), out, MEM_REF)
        except UnsupportedLayer as err:
            raise GroupnetRTLError(f"{err} ({node.op_type})") from None
        self.set_nodeattr("gen_top_module", node.name)
        core = self._core_name()
        source = rtl.source.read_text()
        (out / f"{core}.v").write_text(
            re.sub(rf"^module\s+{rtl.module}\b", f"module {core}", source, count=1,
                   flags=re.MULTILINE))
        (out / f"{node.name}.v").write_text(self._wrapper(rtl, core))
        # FINN's ReplaceVerilogRelPaths and CreateStitchedIP look here
        self.set_nodeattr("ipgen_path", str(out))
        self.set_nodeattr("ip_path", str(out))

    def _streams(self, rtl: LayerRTL) -> tuple[list, list]:
        """FINN's stream interfaces (name, byte-padded width) with the RTL's payload
        widths, checked against the node's own stream widths."""
        intf = self.get_verilog_top_module_intf_names()
        ins = [(name, padded, rtl.in_widths[i], self.get_instream_width(i))
               for i, (name, padded) in enumerate(intf["s_axis"])]
        outs = [(name, padded, rtl.out_width, self.get_outstream_width(i))
                for i, (name, padded) in enumerate(intf["m_axis"])]
        for name, _, have, want in ins + outs:
            if have != want:
                raise GroupnetRTLError(
                    f"node {self.onnx_node.name}: stream {name} is {want} bits in FINN but "
                    f"{have} bits in {self.module}.v (a bug in hw/rtl/layers.py)")
        return ins, outs

    def _wrapper(self, rtl: LayerRTL, core: str) -> str:
        ins, outs = self._streams(rtl)
        node = self.onnx_node
        return "\n".join([
            f"// generated by groupnet.hw.finn_rtl for FINN node {node.name} "
            f"({node.op_type}); do not edit",
            f"// FINN's ports around this project's {rtl.module} (hw/rtl/{rtl.module}.v, "
            f"copied as {core}.v)",
            "`timescale 1ns / 1ps",
            f"module {node.name} (", *_port_lines(ins, outs), ");",
            *_output_lines(outs, rtl.out_width), *_core_lines(core, rtl.params, ins),
            "endmodule", ""])

    def get_rtl_file_list(self, abspath: bool = False) -> list[str]:
        folder = self.get_nodeattr("code_gen_dir_ipgen") + "/" if abspath else ""
        return [f"{folder}{self._core_name()}.v",
                f"{folder}{self.get_nodeattr('gen_top_module')}.v"]

    def code_generation_ipi(self) -> list[str]:
        """Add the node's Verilog to the project and instantiate the wrapper as a module
        reference (memory files are read by ``$readmemh`` through the absolute paths
        that FINN's ReplaceVerilogRelPaths writes into the wrapper before stitching)."""
        cmds = [f"add_files -norecurse {f}" for f in self.get_rtl_file_list(abspath=True)]
        cmds.append(f"create_bd_cell -type module -reference "
                    f"{self.get_nodeattr('gen_top_module')} {self.onnx_node.name}")
        return cmds

    # --------------------------------------------------------------------- execution
    def execute_node(self, context, graph) -> None:
        """The base op's Python execution (what the RTL is checked against)."""
        if self.get_nodeattr("exec_mode") == "rtlsim":
            raise GroupnetRTLError(
                f"node {self.onnx_node.name} ({self.onnx_node.op_type}): FINN's rtlsim "
                "cannot run this project's RTL; simulate the build with `groupnet sim "
                "BUILD` (Verilator) or leave exec_mode empty for Python execution")
        self.HW_OP.execute_node(self, context, graph)

    # --------------------------------------------------------------------- estimates
    def finn_variant(self):
        """FINN's implementation that this node replaced, on the same node attributes."""
        op_type = self.get_nodeattr("finn_variant") or self.DEFAULT_VARIANT
        node = NodeProto()
        node.CopyFrom(self.onnx_node)
        node.op_type, node.domain = op_type, FINN_DOMAINS[op_type[-4:]]
        return getCustomOp(node)

    def _estimate(self, name: str, fpgapart: str):
        return getattr(self.finn_variant(), name)(fpgapart)


def _port_lines(ins: list, outs: list) -> list[str]:
    """FINN's clock, reset and AXI-stream ports (with Vivado's interface attributes)."""
    busif = ":".join(name for name, *_ in ins + outs)
    ports = [f'    (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF {busif}, '
             'ASSOCIATED_RESET ap_rst_n" *)',
             '    (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 ap_clk CLK" *)',
             "    input  wire ap_clk,",
             '    (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)',
             "    input  wire ap_rst_n,"]
    for name, padded, width, _ in ins:
        data = f"    input  wire [{padded - 1}:0] {name}_TDATA,"
        if padded > width:      # FINN pads streams to bytes; the pad bits are unused
            data = (f"    /* verilator lint_off UNUSEDSIGNAL */\n{data}\n"
                    "    /* verilator lint_on UNUSEDSIGNAL */")
        ports += [data, f"    input  wire {name}_TVALID,", f"    output wire {name}_TREADY,"]
    for name, padded, *_ in outs:
        ports += [f"    output wire [{padded - 1}:0] {name}_TDATA,",
                  f"    output wire {name}_TVALID,", f"    input  wire {name}_TREADY,"]
    ports[-1] = ports[-1].rstrip(",")
    return ports


def _output_lines(outs: list, width: int) -> list[str]:
    """The module's N output streams (N = 1 but for DuplicateStreams), zero-padded."""
    lines = [f"    wire [{len(outs) * width - 1}:0] core_tdata;",
             f"    wire [{len(outs) - 1}:0] core_tvalid, core_tready;"]
    for i, (name, padded, *_) in enumerate(outs):
        data = f"core_tdata[{i * width} +: {width}]"
        if padded > width:
            data = f"{{{padded - width}'b0, {data}}}"
        lines += [f"    assign {name}_TDATA = {data};",
                  f"    assign {name}_TVALID = core_tvalid[{i}];",
                  f"    assign core_tready[{i}] = {name}_TREADY;"]
    return lines


def _core_lines(core: str, params: dict, ins: list) -> list[str]:
    """The instance of this project's module (ports in/out, or a/b/out for the add)."""
    conns = [".clk(ap_clk)", ".rst_n(ap_rst_n)"]
    for port, (name, _, width, _) in zip(("a", "b") if len(ins) == 2 else ("in",), ins):
        conns += [f".{port}_tdata({name}_TDATA[{width - 1}:0])",
                  f".{port}_tvalid({name}_TVALID)", f".{port}_tready({name}_TREADY)"]
    conns += [".out_tdata(core_tdata)", ".out_tvalid(core_tvalid)", ".out_tready(core_tready)"]
    values = ", ".join(f'.{k}("{v}")' if isinstance(v, str) else f".{k}({int(v)})"
                       for k, v in params.items())
    return [f"    {core} #({values}) core (", "        " + ",\n        ".join(conns), "    );"]


def _delegate_estimates(cls: type) -> type:
    for name in ESTIMATORS:
        def method(self, fpgapart, _name=name):
            return self._estimate(_name, fpgapart)
        method.__name__ = name
        method.__doc__ = f"FINN's {name} of the replaced variant (see ``finn_variant``)."
        setattr(cls, name, method)
    return cls


@_delegate_estimates
class MVAU_groupnet_rtl(GroupnetRTL, MVAU):
    """XNOR-popcount (binary x binary) or integer x +-1 MVAU, thresholds or raw sums out;
    weights in a ROM inside the module."""
    HW_OP, DEFAULT_VARIANT = MVAU, "MVAU_hls"

    @classmethod
    def interface_problem(cls, inst) -> str | None:
        if inst.get_nodeattr("mem_mode") not in ("internal_embedded", "internal_decoupled"):
            return (f"mem_mode {inst.get_nodeattr('mem_mode')}: the RTL keeps its weights "
                    "on chip (internal_embedded or internal_decoupled)")
        return super().interface_problem(inst)


@_delegate_estimates
class Thresholding_groupnet_rtl(GroupnetRTL, Thresholding):
    """Multi-threshold activation (integer input), thresholds in a ROM."""
    HW_OP, DEFAULT_VARIANT = Thresholding, "Thresholding_rtl"


@_delegate_estimates
class DuplicateStreams_groupnet_rtl(GroupnetRTL, DuplicateStreams):
    """One stream to N (the Group-Net fork)."""
    HW_OP, DEFAULT_VARIANT = DuplicateStreams, "DuplicateStreams_hls"


@_delegate_estimates
class ElementwiseAdd_groupnet_rtl(GroupnetRTL, ElementwiseAdd):
    """Stream + stream integer add (the Group-Net join)."""
    HW_OP, DEFAULT_VARIANT = ElementwiseAdd, "ElementwiseAdd_hls"


@_delegate_estimates
class Pool_groupnet_rtl(GroupnetRTL, Pool):
    """Max pool over the windows of a sliding-window generator."""
    HW_OP, DEFAULT_VARIANT = Pool, "Pool_hls"


@_delegate_estimates
class FMPadding_groupnet_rtl(GroupnetRTL, FMPadding):
    """Feature-map padding with 0 (the encoded -1 of a binary tensor)."""
    HW_OP, DEFAULT_VARIANT = FMPadding, "FMPadding_rtl"


@_delegate_estimates
class ConvolutionInputGenerator_groupnet_rtl(GroupnetRTL, ConvolutionInputGenerator_rtl):
    """Sliding-window generator (MVAU, depthwise and parallel-window orders). Built on
    FINN's RTL variant for its attributes (``parallel_window``) and stream shapes."""
    HW_OP, DEFAULT_VARIANT = ConvolutionInputGenerator, "ConvolutionInputGenerator_rtl"


VARIANTS: dict[str, type[GroupnetRTL]] = {
    cls.__name__[: -len(SUFFIX)]: cls
    for cls in (MVAU_groupnet_rtl, Thresholding_groupnet_rtl, DuplicateStreams_groupnet_rtl,
                ElementwiseAdd_groupnet_rtl, Pool_groupnet_rtl, FMPadding_groupnet_rtl,
                ConvolutionInputGenerator_groupnet_rtl)}


def register() -> None:
    """Add the variants to FINN's RTL op registry (idempotent)."""
    import finn.custom_op.fpgadataflow.rtl as finn_rtl
    for cls in VARIANTS.values():
        known = finn_rtl.custom_op.get(cls.__name__)
        if known is not None and known is not cls:
            raise GroupnetRTLError(f"{cls.__name__} is already registered in FINN as {known}")
        finn_rtl.custom_op[cls.__name__] = cls


register()


class UseGroupnetRTL(Transformation):
    """Replace FINN's specialized layers by this project's RTL variants wherever the RTL
    implements the node (``hw.rtl.layers.why_not`` and the interface settings); other
    nodes keep FINN's implementation. Node names, inputs and attributes are kept."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if node.domain not in FINN_DOMAINS.values() or node.op_type.endswith(SUFFIX):
                continue
            op = base_op(node.op_type)
            cls = VARIANTS.get(op)
            if cls is None:
                continue
            inst = getCustomOp(node)
            if why_not(model, node, inst, op) or cls.interface_problem(inst):
                continue
            replaced = node.op_type
            node.op_type, node.domain = cls.__name__, RTL_DOMAIN
            getCustomOp(node).set_nodeattr("finn_variant", replaced)
        return model, False

