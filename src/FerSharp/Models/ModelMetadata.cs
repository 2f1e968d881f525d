using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

using FerSharp.Data;

namespace FerSharp.Models;

/// <summary>
/// How raw 0..255 pixels become network input. Pixels are scaled to [0,1]; with <see cref="PerFace"/> =
/// <c>standardize</c> each face is then shifted to mean 0 and scaled to standard deviation 1 on its own (so a
/// face's brightness and contrast do not reach the network); last comes <c>(value - Mean) / Std</c>.
/// </summary>
public sealed record Normalization(double Mean = 0, double Std = 1)
{
    /// <summary>No per-face step: the global mean and std only.</summary>
    public const string PerFaceNone = "none";

    /// <summary>Per-face standardization: <c>(x - mean(x)) / sqrt(var(x) + <see cref="PerFaceEpsilon"/>)</c> over each face's pixels in [0,1].</summary>
    public const string PerFaceStandardize = "standardize";

    /// <summary>
    /// Keeps a nearly flat face (a blank wall, a blown-out crop) from having its sensor noise magnified into
    /// a full-contrast input: below a standard deviation of 0.01 (about 2.5 grey levels) the scale stops growing.
    /// </summary>
    public const double PerFaceEpsilon = 1e-4;

    /// <summary>The per-face step names this FerSharp knows.</summary>
    public static IReadOnlyList<string> KnownPerFace { get; } = [PerFaceNone, PerFaceStandardize];

    /// <summary>The per-face step: <see cref="PerFaceNone"/> (packages without the field) or <see cref="PerFaceStandardize"/>.</summary>
    public string PerFace { get; init; } = PerFaceNone;

    [System.Text.Json.Serialization.JsonIgnore]
    public bool StandardizesEachFace => PerFace == PerFaceStandardize;

    /// <summary>Refuses a per-face step this FerSharp does not implement, by name, rather than running the network on inputs it was not trained on.</summary>
    public void EnsureKnown(string place)
    {
        if (!KnownPerFace.Contains(PerFace))
        {
            throw new InvalidDataException($"{place}: normalization.per_face '{PerFace}' is not known to this FerSharp (known: {string.Join(", ", KnownPerFace)}); upgrade FerSharp");
        }
    }

    public override string ToString()
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var global = Mean == 0 && Std == 1 ? null : string.Create(inv, $"minus {Mean}, divided by {Std}");
        return StandardizesEachFace
            ? $"pixels / 255, each face standardized to mean 0 and std 1{(global is null ? "" : ", then " + global)}"
            : $"pixels / 255{(global is null ? "" : ", " + global)}";
    }
}

/// <summary>Identifies the data a model was trained on, so a report can say what it was compared with.</summary>
public sealed record DatasetFingerprint(string Source, int Count, string Sha256, IReadOnlyDictionary<string, int> ClassCounts)
{
    /// <summary>The splits the training faces came from (Training, PublicTest, …); null in packages made before it was recorded.</summary>
    public IReadOnlyList<string>? Splits { get; init; }
}

/// <summary>A package whose weights were averaged into another (<see cref="ModelMetadata.AveragedFrom"/>).</summary>
public sealed record AveragedModel(string Name, string? WeightsSha256);

/// <summary>
/// A package's int8 copy of its network (<c>fer models quantize</c>): convolutions in 8-bit integers, which ONNX
/// Runtime runs about twice as fast on CPUs with integer dot-product instructions, at slightly different answers.
/// </summary>
/// <param name="File">The int8 ONNX file in the package folder (<see cref="ModelMetadata.Int8FileName"/>).</param>
/// <param name="Sha256">Its checksum.</param>
/// <param name="FromWeightsSha256">The float network it was made from: a package whose network changed drops it.</param>
/// <param name="Calibration">The faces its activation ranges were measured on.</param>
public sealed record Int8Network(string File, string Sha256, string FromWeightsSha256, string Calibration);

/// <summary>The <c>model.json</c> beside the network of a model package.</summary>
public sealed record ModelMetadata
{
    /// <summary>
    /// 2 added <c>normalization.per_face</c>: a version-1 reader would ignore it and feed the network the wrong
    /// inputs. 3 stores the network as ONNX (<see cref="OnnxFileName"/>, normalization inside the graph), read
    /// by recognition without libtorch and by training alike; 2 kept TorchSharp weights in <c>weights.bin</c>.
    /// </summary>
    public const int CurrentFormatVersion = 3;

    /// <summary>The network file of a version-3 package.</summary>
    public const string OnnxFileName = "model.onnx";

    /// <summary>The int8 copy of the network, when the package has one (<see cref="Int8"/>).</summary>
    public const string Int8FileName = "model.int8.onnx";

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    public required string Name { get; init; }
    public required string Architecture { get; init; }
    public required IReadOnlyList<string> ClassNames { get; init; }
    public int InputSize { get; init; } = 48;
    public int InputChannels { get; init; } = 1;
    public Normalization Normalization { get; init; } = new();
    /// <summary><see cref="OnnxFileName"/> in version 3; <c>weights.bin</c> (TorchSharp's format) in older packages.</summary>
    public string WeightsFile { get; init; } = OnnxFileName;
    public string? WeightsSha256 { get; init; }
    /// <summary>Storage precision of the weights: float32, or float16 for shipped packages (half the size; computed in float32).</summary>
    public string WeightsDtype { get; init; } = "float32";
    public long Parameters { get; init; }
    /// <summary>
    /// Predictions average the face and its mirror image (both in one batch). Set when shipping a model whose
    /// validation accuracy gains from it; the network itself sees a single view.
    /// </summary>
    public bool FlipAveraging { get; init; }
    /// <summary>The training recipe (FerSharp.Training's <c>TrainOptions</c>), kept as written so recognition need not understand it.</summary>
    public JsonObject? Training { get; init; }
    public DatasetFingerprint? Dataset { get; init; }
    /// <summary>
    /// The packages whose weights were averaged into this one; null for a
    /// package that came straight from training. <see cref="Training"/> is then the last member's recipe.
    /// </summary>
    public IReadOnlyList<AveragedModel>? AveragedFrom { get; init; }
    /// <summary>Where the batch-norm running statistics came from when not from training (e.g. recomputed after averaging).</summary>
    public string? BatchNormStatistics { get; init; }
    /// <summary>
    /// How the package came about where its recipe alone does not say (a chain of runs, a pruned start), in a
    /// sentence or two for its model card; set by <c>fer models ship --history</c>, kept by re-scoring.
    /// </summary>
    public string? History { get; init; }

    /// <summary>
    /// The int8 copy of the network, which ONNX Runtime runs by default (<see cref="NetworkPrecision.Auto"/>);
    /// null when the package has none. Its test figures are the metrics prefixed <c>int8_</c>.
    /// </summary>
    public Int8Network? Int8 { get; init; }

    /// <summary>Prefix of the int8 network's figures in <see cref="Metrics"/>.</summary>
    public const string Int8MetricPrefix = "int8_";

    /// <summary><see cref="Metrics"/> without the int8 network's figures, for a package whose int8 copy is replaced or dropped.</summary>
    public Dictionary<string, double> MetricsWithoutInt8() =>
        Metrics.Where(p => !p.Key.StartsWith(Int8MetricPrefix, StringComparison.Ordinal)).ToDictionary(p => p.Key, p => p.Value);

    /// <summary>
    /// Whether faces of <paramref name="split"/> were training data for this model, so that accuracy on them is
    /// no test result. Packages made before the splits were recorded trained on Training, plus the default
    /// validation split (PublicTest) when they were told to train on their validation faces.
    /// </summary>
    public bool TrainedOn(DataSplit split) =>
        Dataset?.Splits is { } splits
            ? splits.Contains(split.ToString())
            : split == DataSplit.Training || (split == DataSplit.PublicTest && TrainsOnValidation);

    private bool TrainsOnValidation =>
        Training?["train_on_validation"] is JsonValue value && value.TryGetValue<bool>(out var onValidation) && onValidation;

    /// <summary>Whether the package stores its network as ONNX (version 3), which recognition without libtorch needs.</summary>
    [JsonIgnore]
    public bool HasOnnxNetwork => WeightsFile.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);

    /// <summary>Validation / test numbers, e.g. <c>val_accuracy</c>, <c>privatetest_accuracy</c>.</summary>
    public Dictionary<string, double> Metrics { get; init; } = [];
    public int? Epochs { get; init; }
    public double? TrainingSeconds { get; init; }
    public string FerSharpVersion { get; init; } = FerSharpInfo.Version;
    public DateTimeOffset Created { get; init; } = DateTimeOffset.UtcNow;

    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };
}
