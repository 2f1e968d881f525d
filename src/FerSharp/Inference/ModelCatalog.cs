namespace FerSharp.Inference;

/// <summary>Finds the model packages shipped in the repository's <c>models/</c> folder.</summary>
public static class ModelCatalog
{
    /// <summary>
    /// Preferred shipped models. The default should be the most accurate model that meets the real-time goal
    /// (1 ms per face at batch 1 on 2 cores); none does yet (fer2013-realtime measures about 1.2 ms, see
    /// models/README.md), so the most accurate comes first and the faster one is a choice by <c>--model</c>.
    /// </summary>
    public static IReadOnlyList<string> DefaultOrder { get; } = ["fer2013-best", "fer2013-realtime", "fer2013-seed"];

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
