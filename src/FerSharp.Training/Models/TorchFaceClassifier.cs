using FerSharp.Evaluation;

namespace FerSharp.Models;

/// <summary>
/// A package on libtorch as a recognizer's classifier (<see cref="InferenceEngine.TorchSharp"/> or
/// <see cref="InferenceEngine.TorchSharpBFloat16"/>): for packages older than format 3, which have no ONNX
/// network, and for comparing the engines.
/// </summary>
public sealed class TorchFaceClassifier : IFaceClassifier
{
    public TorchFaceClassifier(EmotionModel model)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
    }

    /// <summary>Loads a package on libtorch with the given engine.</summary>
    public static TorchFaceClassifier Load(string path, InferenceEngine engine = InferenceEngine.TorchSharp)
    {
        var model = EmotionModel.Load(path);
        try
        {
            model.Engine = engine;
            return new TorchFaceClassifier(model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The package on libtorch (owned: disposed with this).</summary>
    public EmotionModel Model { get; }
    public ModelMetadata Metadata => Model.Metadata;
    public IReadOnlyList<string> ClassNames => Model.ClassNames;
    public InferenceEngine Engine => Model.Engine;

    public float[][] PredictProbabilities(IReadOnlyList<byte[]> faces, TtaMode tta = TtaMode.None) =>
        TestTimeAugmentation.PredictProbabilities(Model, faces, tta);

    public void Dispose() => Model.Dispose();
}
