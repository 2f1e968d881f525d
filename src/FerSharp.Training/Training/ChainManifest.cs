using System.Text.Json;

using FerSharp.Models;

namespace FerSharp.Training;

/// <summary>
/// What a chain's run folder says about the whole chain, which its stage folders alone cannot: how many stages
/// it has, their epochs, and the preset that made it, so that a status line can say "stage 3/8".
/// </summary>
public sealed record ChainManifest(string? Preset, IReadOnlyList<int> StageEpochs)
{
    public const string FileName = "chain.json";

    public static void Write(string runDirectory, ChainManifest manifest) =>
        AtomicFile.WriteAllText(Path.Combine(runDirectory, FileName), JsonSerializer.Serialize(manifest, ModelMetadata.JsonOptions));

    /// <summary>The manifest in <paramref name="runDirectory"/>, or null when the folder has none (older chains, single runs).</summary>
    public static ChainManifest? Read(string runDirectory)
    {
        var path = Path.Combine(runDirectory, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<ChainManifest>(File.ReadAllText(path), ModelMetadata.JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: not a chain manifest ({ex.Message})", ex);
        }
    }
}
