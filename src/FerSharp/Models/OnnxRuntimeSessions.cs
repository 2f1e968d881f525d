using Microsoft.ML.OnnxRuntime;

namespace FerSharp.Models;

/// <summary>How FerSharp opens an ONNX Runtime session: every graph optimization, a fixed thread count, no spinning.</summary>
internal static class OnnxRuntimeSessions
{
    public static InferenceSession Create(byte[] onnx, int threads)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        // Idle worker threads would otherwise spin for a while after each call, taking the core a concurrent
        // request (or the video decoder) needs.
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return new InferenceSession(onnx, options);
    }
}
