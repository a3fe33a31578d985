"""FINN dataflow flow for Group-Net QONNX models (starts from an .onnx path)."""
