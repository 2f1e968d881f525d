using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;

using FerSharp.Data;
using FerSharp.Inference;
using FerSharp.Models;
using FerSharp.Training;

using OpenCvSharp;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary>
/// <c>fer info</c>: what this installation has and finds, in one place for a bug report or a speed question:
/// versions, the CPU's vector extensions (they decide which engine and precision are fast), whether the native
/// libraries load, the face detectors, the data, and the shipped models.
/// </summary>
internal static class InfoCommand
{
    // The extensions the docs' speed figures depend on, in order of arrival.
    private static readonly string[] KnownCpuFeatures = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"];

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print it as JSON." };
        var command = new Command("info", "What this installation has: versions, CPU extensions, native libraries, face detector, data and shipped models.") { json };
        command.SetAction((parse, ct) =>
        {
            var info = Collect();
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(info, Json));
            }
            else
            {
                Print(info);
            }
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    private static readonly JsonSerializerOptions Json = new(CliJson.Indented) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>A shipped package as its model.json describes it; accuracy as the package predicts (with its flip averaging).</summary>
    private sealed record ModelEntry(string Name, string Path, string Architecture, long Parameters, bool FlipAveraging, double? PrivatetestAccuracy, bool IsDefault, string? Error);

    private sealed record Info(
        string FersharpVersion, string Dotnet, string Os, string Cpu, int LogicalCores, string[] CpuFeatures, bool? NativeBfloat16,
        string TorchsharpVersion, int? LibtorchThreads, string? LibtorchError, string OpencvVersion,
        string FaceDetector, string? BlazefaceError, string CascadePath, bool CascadeFound, string? DataPath, string? ModelsDirectory, ModelEntry[] Models,
        Dictionary<string, string?> Environment);

    private static Info Collect()
    {
        var cpuInfo = ReadCpuInfo();
        var (threads, torchError) = LibTorchThreads();
        var cascade = new HaarDetectorOptions().CascadePath;
        var modelsDir = ModelCatalog.ModelsDirectory();
        var defaultModel = ModelCatalog.DefaultModelPath();
        var models = ModelCatalog.ShippedPackages().Select(dir => Model(dir, defaultModel)).ToArray();
        return new Info(
            FerSharpInfo.Version, RuntimeInformation.FrameworkDescription, RuntimeInformation.OSDescription,
            cpuInfo.Model, System.Environment.ProcessorCount, KnownCpuFeatures.Where(cpuInfo.Flags.Contains).ToArray(), PassCopy.CpuHasNativeBFloat16(),
            typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "?", threads, torchError, Cv2.GetVersionString() ?? "?",
            new RecognizerOptions().DetectorKind.ToString(), BlazeFaceLoads(), cascade, File.Exists(cascade), Fer2013Dataset.FindSharedData(), modelsDir, models,
            new[] { "DOTNET_JITMinOpts", "GLIBC_TUNABLES", "FERSHARP_DATA", "FERSHARP_MODELS", "FERSHARP_HAAR_CASCADE" }
                .ToDictionary(v => v, System.Environment.GetEnvironmentVariable));
    }

    private static ModelEntry Model(string dir, string? defaultModel)
    {
        var isDefault = defaultModel != null && Path.GetFullPath(dir) == Path.GetFullPath(defaultModel);
        try
        {
            var m = EmotionModel.ReadMetadata(dir);
            double? accuracy = m.Metrics.TryGetValue("privatetest_accuracy", out var a) ? a : null;
            return new ModelEntry(m.Name, dir, m.Architecture, m.Parameters, m.FlipAveraging, accuracy, isDefault, null);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            return new ModelEntry(Path.GetFileName(dir), dir, "?", 0, false, null, isDefault, ex.Message);
        }
    }

    private static (string Model, HashSet<string> Flags) ReadCpuInfo()
    {
        try
        {
            var lines = File.ReadLines("/proc/cpuinfo").ToList();
            string? Field(string name) => lines.FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
            return (Field("model name") ?? "?", [.. (Field("flags") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)]);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ("?", []);
        }
    }

    // The detector is built into the assembly, but OpenCV must still import it.
    private static string? BlazeFaceLoads()
    {
        try
        {
            using var detector = new BlazeFaceDetector();
            return null;
        }
        catch (Exception ex) when (ex is OpenCVException or InvalidDataException or InvalidOperationException)
        {
            return ex.Message;
        }
    }

    // Loading libtorch is itself a check: on Debian 12 it fails unless the build's ELF fix was applied.
    private static (int? Threads, string? Error) LibTorchThreads()
    {
        try
        {
            return (TorchSharp.torch.get_num_threads(), null);
        }
        catch (Exception ex) when (ex is DllNotFoundException or TypeInitializationException or NotSupportedException)
        {
            return (null, ex.InnerException?.Message ?? ex.Message);
        }
    }

    private static void Print(Info info)
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders().AddColumns("", "");
        void Row(string name, string value) => table.AddRow(new Text(name), new Markup(value));
        string Esc(string? s) => Markup.Escape(s ?? "");
        Row("FerSharp", Esc(info.FersharpVersion));
        Row(".NET", Esc(info.Dotnet));
        Row("OS", Esc(info.Os));
        Row("CPU", Esc($"{info.Cpu}, {info.LogicalCores} logical cores"));
        Row("CPU extensions", Esc(info.CpuFeatures.Length == 0 ? "none of " + string.Join(", ", KnownCpuFeatures) : string.Join(", ", info.CpuFeatures))
            + (info.NativeBfloat16 == true ? " [grey](native bfloat16: --precision BFloat16 and --engine TorchSharpBFloat16 are fast here)[/]" : ""));
        Row("TorchSharp / libtorch", info.LibtorchError is { } e
            ? $"{Esc(info.TorchsharpVersion)}; [red]libtorch does not load: {Esc(e)}[/]"
            : Esc($"{info.TorchsharpVersion}; libtorch loads, {info.LibtorchThreads} threads"));
        Row("OpenCV", Esc(info.OpencvVersion));
        Row("face detector", info.BlazefaceError is { } blazeError
            ? $"{Esc(info.FaceDetector)} by default; [red]BlazeFace does not load: {Esc(blazeError)}[/]"
            : $"{Esc(info.FaceDetector)} by default (BlazeFace is built in and loads)");
        Row("Haar cascade", (info.CascadeFound
            ? Esc(info.CascadePath)
            : $"[red]{Esc(info.CascadePath)} missing[/]: apt-get install opencv-data, or set FERSHARP_HAAR_CASCADE") + " [grey](--detector Haar)[/]");
        Row("FER2013 data", info.DataPath is { } data ? Esc(data) : "[grey]not found (../shared/data/fer2013 or $FERSHARP_DATA); only training and evaluation need it[/]");
        Row("models folder", info.ModelsDirectory is { } dir ? Esc(dir) : "[red]not found[/]: pass --model or set FERSHARP_MODELS");
        foreach (var (name, value) in info.Environment)
        {
            Row(name, value is null ? "[grey]not set[/]" : Esc(value));
        }
        AnsiConsole.Write(table);
        if (info.Models.Length == 0) return;
        var models = new Table().Border(TableBorder.Rounded).Title("shipped models")
            .AddColumns("model", "architecture", "parameters", "flip averaging", "PrivateTest accuracy", "default");
        foreach (var m in info.Models)
        {
            models.AddRow(
                new Text(m.Name),
                m.Error is { } error ? new Markup($"[red]{Esc(error)}[/]") : new Text(m.Architecture),
                new Text(m.Parameters.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)),
                new Text(m.FlipAveraging ? "yes" : "no"),
                new Text(m.PrivatetestAccuracy is { } a ? $"{a * 100:F2} %" : "–"),
                new Text(m.IsDefault ? "default" : ""));
        }
        AnsiConsole.Write(models);
    }
}
