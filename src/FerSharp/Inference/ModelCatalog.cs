namespace FerSharp.Inference;

/// <summary>
/// Finds the shipped model packages: in the repository's <c>models/</c> folder, or in the one the FerSharp NuGet
/// package copies beside an application's binaries.
/// </summary>
public static class ModelCatalog
{
    /// <summary>
    /// Preferred shipped models, most accurate first. fer2013-realtime meets the real-time goal of 1 ms per
    /// face on a quiet host but is less accurate, and in a photo or video frame classification is a small
    /// part of the time next to decoding and face detection (docs/decisions/0008-default-model.md), so the
    /// default favours accuracy and the fast model is a choice by <c>--model</c>. The chosen model is
    /// reported: <c>EmotionRecognizer.Model.Metadata.Name</c>, printed by <c>fer predict</c>.
    /// </summary>
    public static IReadOnlyList<string> DefaultOrder { get; } = ["fer2013-best", "fer2013-vggbn", "fer2013-realtime", "fer2013-seed"];

    /// <summary>The <c>models/</c> folder: $FERSHARP_MODELS, else the nearest one above the working directory or the binaries.</summary>
    public static string? ModelsDirectory()
    {
        var env = Environment.GetEnvironmentVariable("FERSHARP_MODELS");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(env) ? env : null;
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "models");
                if (Directory.Exists(candidate) && Directory.EnumerateFiles(candidate, "model.json", SearchOption.AllDirectories).Any())
                {
                    return candidate;
                }
            }
        }
        return null;
    }

    /// <summary>
    /// The path as given when it exists; otherwise a bare package name found in the <c>models/</c> folder
    /// (<c>fer2013-realtime</c>) becomes its path there, so a shipped model can be named from any directory.
    /// </summary>
    public static string Resolve(string pathOrName)
    {
        ArgumentNullException.ThrowIfNull(pathOrName);
        if (Directory.Exists(pathOrName) || File.Exists(pathOrName) || !IsBareName(pathOrName)) return pathOrName;
        var models = ModelsDirectory();
        var candidate = models == null ? null : Path.Combine(models, pathOrName);
        return candidate != null && File.Exists(Path.Combine(candidate, "model.json")) ? candidate : pathOrName;
    }

    /// <summary>The package folders in the <c>models/</c> folder, in name order (none when there is no such folder).</summary>
    public static IReadOnlyList<string> ShippedPackages()
    {
        var models = ModelsDirectory();
        return models == null
            ? []
            : Directory.GetDirectories(models).Where(d => File.Exists(Path.Combine(d, "model.json"))).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The names of the shipped packages, for messages that suggest them.</summary>
    public static IReadOnlyList<string> ShippedNames() => ShippedPackages().Select(Path.GetFileName).OfType<string>().ToList();

    public static bool IsBareName(string pathOrName) =>
        pathOrName.Length > 0 && pathOrName.IndexOfAny(['/', '\\']) < 0 && pathOrName is not ("." or "..");

    public static string? DefaultModelPath()
    {
        var models = ModelsDirectory();
        if (models == null) return null;
        foreach (var name in DefaultOrder)
        {
            var path = Path.Combine(models, name);
            if (File.Exists(Path.Combine(path, "model.json"))) return path;
        }
        return Directory.EnumerateFiles(models, "model.json", SearchOption.AllDirectories).Select(Path.GetDirectoryName).FirstOrDefault();
    }
}
