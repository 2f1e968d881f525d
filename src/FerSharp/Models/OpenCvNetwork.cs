using System.Runtime.InteropServices;

using OpenCvSharp;
using OpenCvSharp.Dnn;

namespace FerSharp.Models;

/// <summary>
/// A network run by OpenCV's DNN module from a package's ONNX graph (<see cref="InferenceEngine.OpenCv"/>).
/// Not thread-safe: callers serialize.
/// </summary>
internal sealed class OpenCvNetwork : IDisposable
{
    private readonly Net _net;
    private readonly int _inputSize;

    private OpenCvNetwork(Net net, int inputSize)
    {
        _net = net;
        _inputSize = inputSize;
    }

    /// <summary>Imports a package's ONNX graph.</summary>
    public static OpenCvNetwork Create(byte[] onnx, int inputSize) => new(Import(onnx), inputSize);

    /// <summary>An ONNX graph as an OpenCV network on its own CPU backend; also used for the face detector's graph.</summary>
    public static Net Import(byte[] onnx)
    {
        var net = CvDnn.ReadNetFromOnnx(onnx) ?? throw new InvalidDataException("OpenCV could not import the ONNX graph");
        if (net.Empty())
        {
            net.Dispose();
            throw new InvalidDataException("OpenCV imported an empty network from the ONNX graph");
        }
        net.SetPreferableBackend(Backend.OPENCV);
        net.SetPreferableTarget(Target.CPU);
        return net;
    }

    /// <summary>Logits, row by row, for <paramref name="batch"/> faces laid out as [B,1,size,size].</summary>
    public float[] Forward(float[] input, int batch, out int classes)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (batch < 1 || input.Length != batch * _inputSize * _inputSize)
        {
            throw new ArgumentException($"input holds {input.Length} values; expected {batch} faces of {_inputSize}x{_inputSize}");
        }
        using var blob = new Mat([batch, 1, _inputSize, _inputSize], MatType.CV_32F);
        Marshal.Copy(input, 0, blob.Data, input.Length);
        _net.SetInput(blob);
        using var output = _net.Forward();
        if (output.Dims != 2 || output.Size(0) != batch || !output.IsContinuous())
        {
            throw new InvalidOperationException($"OpenCV returned an output of {output.Dims} dimensions for a batch of {batch}");
        }
        classes = output.Size(1);
        var logits = new float[batch * classes];
        Marshal.Copy(output.Data, logits, 0, logits.Length);
        return logits;
    }

    public void Dispose() => _net.Dispose();
}
