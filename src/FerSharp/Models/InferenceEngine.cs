namespace FerSharp.Models;

/// <summary>What runs a model's network.</summary>
public enum InferenceEngine
{
    /// <summary>
    /// ONNX Runtime on the package's ONNX graph, all graph optimizations on: the default, 2-4x faster than
    /// OpenCV's DNN module for every shipped model and for BlazeFace on the 2-core host measured
    /// (docs/decisions/0015-onnx-runtime.md).
    /// </summary>
    OnnxRuntime,
    /// <summary>OpenCV's DNN module on the package's ONNX graph: no further native library than OpenCV's.</summary>
    OpenCv,
    /// <summary>libtorch through TorchSharp, batch norms folded: needs FerSharp.Training (<c>TorchFaceClassifier</c>).</summary>
    TorchSharp,
    /// <summary>
    /// libtorch on a bfloat16 copy of the network: faster for large networks on CPUs with native bfloat16
    /// arithmetic (AVX-512 BF16, AMX), a few answers in a thousand differ from float32. Needs FerSharp.Training.
    /// </summary>
    TorchSharpBFloat16,
}
