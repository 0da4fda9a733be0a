"""Model conversion targets (ONNX, TensorRT, TF-TRT, ...) behind one dispatcher."""
