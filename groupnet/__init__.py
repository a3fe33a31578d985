"""groupnet: Group-Net binary neural networks from Brevitas to FINN dataflow accelerators.

Subpackages: ``groupnet.models`` (the ``models/`` folder: Brevitas models, data, training,
QONNX export) and ``groupnet.hw`` (the ``hw/`` folder: the FINN flow, which starts from an
.onnx file and never imports ``groupnet.models``).
"""

__version__ = "0.1.0"
