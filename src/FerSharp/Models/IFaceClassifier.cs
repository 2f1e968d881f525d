using FerSharp.Evaluation;

namespace FerSharp.Models;

/// <summary>
/// Says the expression of 48x48 grey face crops: what <see cref="Inference.EmotionRecognizer"/> runs on each face
/// it finds. <see cref="OnnxFaceClassifier"/> is the one recognition uses; FerSharp.Training adds one on libtorch.
/// Implementations are safe to call from several threads.
/// </summary>
public interface IFaceClassifier : IDisposable
{
    /// <summary>The package's <c>model.json</c>.</summary>
    ModelMetadata Metadata { get; }

    /// <summary>The class names, in the order of each probability row.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>What runs the network.</summary>
    InferenceEngine Engine { get; }

    /// <summary>
    /// One row of class probabilities per face (48x48 grey bytes, row-major), averaged over the views of
    /// <paramref name="tta"/> and, when the package says so, each view's mirror image.
    /// </summary>
    float[][] PredictProbabilities(IReadOnlyList<byte[]> faces, TtaMode tta = TtaMode.None);
}
