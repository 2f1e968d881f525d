using System.Runtime.InteropServices;
using System.Text.Json;

namespace FerSharp.Models;

/// <summary>
/// Remembers which engine <see cref="InferenceEngine.Auto"/> found faster for a package on this machine, so the
/// timing (0.05-1.3 s per load) is paid once, not on every <c>fer predict</c>. Keyed by the weights' hash, the
/// CPU, its core count and the FerSharp version; a file in the user's cache folder. Anything unreadable is
/// ignored and timed again: the cache can only save time, never change an answer.
/// </summary>
public static class EngineChoiceCache
{
    private const string FileName = "engine-choice.json";

    /// <summary>$FERSHARP_CACHE, else $XDG_CACHE_HOME/fersharp, else ~/.cache/fersharp; null when none can be named.</summary>
    public static string? DefaultFolder()
    {
        if (Environment.GetEnvironmentVariable("FERSHARP_CACHE") is { Length: > 0 } explicitFolder) return explicitFolder;
        if (Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg) return Path.Combine(xdg, "fersharp");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return home.Length > 0 ? Path.Combine(home, ".cache", "fersharp") : null;
    }

    public static string Key(string weightsSha256) =>
        $"{weightsSha256}|{CpuName()}|{Environment.ProcessorCount} cores|{RuntimeInformation.OSArchitecture}|FerSharp {FerSharpInfo.Version}";

    public static EngineTiming? TryGet(string? folder, string key)
    {
        if (folder is null) return null;
        var entries = Read(Path.Combine(folder, FileName));
        return entries.TryGetValue(key, out var t) ? new EngineTiming(t.OpenCvMs, t.TorchSharpMs, t.Rounds) { Remembered = true } : null;
    }

    public static void Save(string? folder, string key, EngineTiming timing)
    {
        if (folder is null) return;
        try
        {
            var path = Path.Combine(folder, FileName);
            var entries = Read(path);
            entries[key] = new Entry(timing.OpenCvMs, timing.TorchSharpMs, timing.Rounds);
            Directory.CreateDirectory(folder);
            AtomicFile.WriteAllText(path, JsonSerializer.Serialize(entries));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A read-only home or container: time again next run.
        }
    }

    private sealed record Entry(double OpenCvMs, double TorchSharpMs, int Rounds);

    private static Dictionary<string, Entry> Read(string path)
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<Dictionary<string, Entry>>(File.ReadAllText(path)) ?? [] : [];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            return [];
        }
    }

    private static string CpuName()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
                ?? RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return RuntimeInformation.ProcessArchitecture.ToString();
        }
    }
}
