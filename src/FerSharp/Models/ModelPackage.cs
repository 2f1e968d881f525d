using System.Security.Cryptography;
using System.Text.Json;

using FerSharp.Data;
using FerSharp.Inference;

namespace FerSharp.Models;

/// <summary>
/// A model package on disk: a folder holding <c>model.json</c> and the network file it names
/// (<see cref="ModelMetadata.OnnxFileName"/> since format 3). Reading and checking it needs no libtorch.
/// </summary>
public static class ModelPackage
{
    /// <summary>A package's <c>model.json</c>, checked, without reading the network.</summary>
    public static ModelMetadata ReadMetadata(string path) => ReadMetadata(path, out _, out _);

    /// <summary>As <see cref="ReadMetadata(string)"/>, also giving the package folder and the <c>model.json</c> path.</summary>
    public static ModelMetadata ReadMetadata(string path, out string folder, out string jsonPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = ModelCatalog.Resolve(path);
        folder = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        jsonPath = Directory.Exists(path) ? Path.Combine(path, "model.json") : path;
        if (!File.Exists(jsonPath))
        {
            throw new FileNotFoundException(Directory.Exists(path)
                ? $"{path}: not a model package (no model.json inside)"
                : $"{path}: no such model package{ShippedHint(path)}", jsonPath);
        }
        ModelMetadata metadata;
        try
        {
            metadata = JsonSerializer.Deserialize<ModelMetadata>(File.ReadAllText(jsonPath), ModelMetadata.JsonOptions)
                ?? throw new InvalidDataException("empty");
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException or NotSupportedException)
        {
            throw new InvalidDataException($"{jsonPath}: not a valid model.json ({ex.Message})", ex);
        }
        if (metadata.FormatVersion > ModelMetadata.CurrentFormatVersion)
        {
            throw new InvalidDataException($"{jsonPath}: format version {metadata.FormatVersion} is newer than this FerSharp understands ({ModelMetadata.CurrentFormatVersion}); upgrade FerSharp");
        }
        if (metadata.ClassNames is not { Count: >= 2 })
        {
            throw new InvalidDataException($"{jsonPath}: class_names must list at least two classes");
        }
        metadata.Normalization.EnsureKnown(jsonPath);
        if (metadata.InputSize != FaceDataset.ImageSize || metadata.InputChannels != 1)
        {
            throw new InvalidDataException($"{jsonPath}: input {metadata.InputChannels}x{metadata.InputSize}x{metadata.InputSize} is not supported (expected 1x48x48)");
        }
        if (metadata.WeightsDtype is not ("float32" or "float16"))
        {
            throw new InvalidDataException($"{jsonPath}: weights_dtype '{metadata.WeightsDtype}' is not float32 or float16");
        }
        return metadata;
    }

    /// <summary>
    /// The bytes of the package's network file, checked against <c>model.json</c>'s checksum.
    /// </summary>
    public static byte[] ReadWeights(string folder, ModelMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var weightsPath = Path.Combine(folder, metadata.WeightsFile);
        if (!File.Exists(weightsPath))
        {
            throw new FileNotFoundException($"{weightsPath}: network file named in model.json is missing", weightsPath);
        }
        var bytes = File.ReadAllBytes(weightsPath);
        if (metadata.WeightsSha256 is { } expected && !string.Equals(expected, Sha256(bytes), StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"{weightsPath}: checksum does not match model.json (file corrupt or replaced)");
        }
        return bytes;
    }

    /// <summary>
    /// The bytes of the package's int8 network (<see cref="ModelMetadata.Int8"/>), checked against its checksum and
    /// against the float network it was made from.
    /// </summary>
    public static byte[] ReadInt8(string folder, ModelMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var jsonPath = Path.Combine(folder, "model.json");
        var int8 = metadata.Int8 ?? throw new InvalidDataException($"{jsonPath}: the package has no int8 network (make one with 'fer models quantize {folder}')");
        if (!string.Equals(int8.FromWeightsSha256, metadata.WeightsSha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"{jsonPath}: int8.from_weights_sha256 does not match weights_sha256: the int8 network was made from another network; run 'fer models quantize {folder}' again");
        }
        var path = Path.Combine(folder, int8.File);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: int8 network named in model.json is missing", path);
        var bytes = File.ReadAllBytes(path);
        if (!string.Equals(int8.Sha256, Sha256(bytes), StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"{path}: checksum does not match model.json (file corrupt or replaced)");
        }
        return bytes;
    }

    /// <summary>Lower-case hex SHA-256, as <c>weights_sha256</c> records it.</summary>
    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static string ShippedHint(string path) =>
        ModelCatalog.IsBareName(path) && ModelCatalog.ShippedNames() is { Count: > 0 } names ? $" (shipped models: {string.Join(", ", names)})" : "";
}
