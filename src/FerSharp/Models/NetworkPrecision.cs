namespace FerSharp.Models;

/// <summary>Which of a package's networks ONNX Runtime runs.</summary>
public enum NetworkPrecision
{
    /// <summary>The int8 copy when the package has one (<see cref="ModelMetadata.Int8"/>) and the engine is ONNX Runtime; the float network otherwise.</summary>
    Auto,
    /// <summary>The float network (<c>model.onnx</c>): the same answers on every engine, within 1e-4.</summary>
    Float,
    /// <summary>The int8 copy (<c>model.int8.onnx</c>), on ONNX Runtime; refused for a package without one.</summary>
    Int8,
}
