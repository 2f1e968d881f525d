using System.Diagnostics;

using FerSharp.Data;

namespace FerSharp.Tests;

/// <summary>A fact that is skipped, with the reason shown, when ../shared/data/fer2013 is absent.</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute(string file = "fer2013.csv.gz")
    {
        if (Fer2013Dataset.FindSharedData(file) == null)
        {
            Skip = $"shared data file {file} not found (looked in ../shared/data/fer2013 and $FERSHARP_DATA)";
        }
    }
}

/// <summary>The checkout the tests were built from.</summary>
public static class Repository
{
    public static string Root { get; } = Find();

    public static string PathOf(string relative) => System.IO.Path.Combine(Root, relative);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "FerSharp.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException($"no FerSharp.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>Helpers for tests that drive a real <c>fer</c> process.</summary>
public static class Processes
{
    /// <summary>The address a starting <c>fer serve</c> prints ("serving on …"), or null when it ended first; stdout is then drained.</summary>
    public static async Task<Uri?> ServingAddressAsync(Process process, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        Uri? address = null;
        string? line;
        while (address == null && (line = await process.StandardOutput.ReadLineAsync(cancel.Token)) != null)
        {
            if (line.StartsWith("serving on ", StringComparison.Ordinal)) address = new Uri(line["serving on ".Length..].Split(' ', ',')[0]);
        }
        if (address != null) _ = process.StandardOutput.ReadToEndAsync();
        return address;
    }

    /// <summary>Sends a POSIX signal (2 SIGINT as Ctrl+C, 15 SIGTERM as Kubernetes and systemd stop a service); 0 on success.</summary>
    public static int Signal(int pid, int signal) => Kill(pid, signal);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}

/// <summary>A temp folder deleted when disposed.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "fersharp-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public static class Synthetic
{
    /// <summary>
    /// A learnable toy dataset: class k is a bright square in cell k of a 3x3 grid over a noisy background,
    /// so a CNN must use spatial features to separate the classes.
    /// </summary>
    public static FaceDataset Patterns(int perClass, int classes = 7, int seed = 1, DataSplit split = DataSplit.Training)
    {
        var rng = new Random(seed);
        var count = perClass * classes;
        var pixels = new byte[count * FaceDataset.PixelsPerImage];
        var labels = new int[count];
        for (var i = 0; i < count; i++)
        {
            var label = i % classes;
            labels[i] = label;
            var face = pixels.AsSpan(i * FaceDataset.PixelsPerImage, FaceDataset.PixelsPerImage);
            for (var p = 0; p < face.Length; p++) face[p] = (byte)rng.Next(0, 90);
            var (cy, cx) = (label / 3 * 16 + rng.Next(0, 4), label % 3 * 16 + rng.Next(0, 4));
            for (var y = cy; y < cy + 12; y++)
                for (var x = cx; x < cx + 12; x++)
                    face[y * 48 + x] = (byte)rng.Next(200, 256);
        }
        return new FaceDataset(EmotionClasses.Fer2013, pixels, labels, Enumerable.Repeat(split, count).ToArray());
    }

    /// <summary>A CSV row with valid fields, for building good and bad files.</summary>
    public static string Row(int emotion, string usage = "Training", int pixelCount = FaceDataset.PixelsPerImage, int value = 7) =>
        $"{emotion},{string.Join(' ', Enumerable.Repeat(value, pixelCount))},{usage}";
}

/// <summary>Runs <c>dotnet</c> with arguments as a separate process and collects its output.</summary>
public static class Dotnet
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <param name="environment">Variables to set; a null value removes the variable.</param>
    /// <param name="standardInput">Bytes piped into the process (its standard input is then closed).</param>
    public static Result Run(string workingDirectory, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null, byte[]? standardInput = null)
    {
        var info = StartInfo(workingDirectory, args, environment);
        info.RedirectStandardInput = standardInput != null;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (standardInput != null)
        {
            process.StandardInput.BaseStream.Write(standardInput);
            process.StandardInput.Close();
        }
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', info.ArgumentList)} did not finish in 5 minutes");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Standard output and error redirected; a null value in <paramref name="environment"/> removes the variable.</summary>
    public static ProcessStartInfo StartInfo(string workingDirectory, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) info.Environment.Remove(key);
            else info.Environment[key] = value;
        }
        return info;
    }
}

/// <summary>Runs the built <c>fer</c> CLI as a separate process, as a user would.</summary>
public static class Cli
{
    public static Dotnet.Result Run(params string[] args) => RunIn(null, args);

    /// <summary>Runs the CLI with <paramref name="standardInput"/> piped into it.</summary>
    public static Dotnet.Result Piped(byte[] standardInput, params string[] args) =>
        Dotnet.Run(AppContext.BaseDirectory, [System.IO.Path.Combine(AppContext.BaseDirectory, "fer.dll"), .. args],
            new Dictionary<string, string?> { ["NO_COLOR"] = "1" }, standardInput);

    /// <summary>Starts the CLI and returns at once, for a command that keeps running (<c>fer serve</c>); the caller reads and kills it.</summary>
    public static Process Start(params string[] args) =>
        Process.Start(Dotnet.StartInfo(AppContext.BaseDirectory, [System.IO.Path.Combine(AppContext.BaseDirectory, "fer.dll"), .. args],
            new Dictionary<string, string?> { ["NO_COLOR"] = "1" }))!;

    public static Dotnet.Result RunIn(string? workingDirectory, params string[] args) =>
        Dotnet.Run(workingDirectory ?? AppContext.BaseDirectory, [System.IO.Path.Combine(AppContext.BaseDirectory, "fer.dll"), .. args],
            new Dictionary<string, string?> { ["NO_COLOR"] = "1" });
}

/// <summary>
/// Tests that train, serve or run many libtorch calls. They run one at a time, after the parallel tests and
/// never beside them: trainings share libtorch's thread pool, and TorchSharp's own temporary scalars (optimizer
/// steps, batch norm's training counter) can be freed mid-call by a garbage collection that another test's
/// allocations start (see <see cref="FerSharp.Models.HeldScalars"/>); CI failed once that way.
/// </summary>
[CollectionDefinition("torch", DisableParallelization = true)]
public sealed class TorchCollection;
