using System.Text.Json;

using FerSharp.Data;
using FerSharp.Inference;
using FerSharp.Models;

namespace FerSharp.Tests;

/// <summary><c>fer info</c>: what the installation has, as a user or a bug report sees it.</summary>
public class InfoCommandTests
{
    private static Dotnet.Result Info(IReadOnlyDictionary<string, string?> environment) =>
        Dotnet.Run(AppContext.BaseDirectory, [Path.Combine(AppContext.BaseDirectory, "fer.dll"), "info", "--json"],
            new Dictionary<string, string?>(environment) { ["NO_COLOR"] = "1" });

    [Fact]
    public void Info_reports_versions_cpu_native_libraries_and_the_shipped_models()
    {
        var result = Info(new Dictionary<string, string?>());
        Assert.True(result.ExitCode == 0, result.Stderr);
        var info = JsonDocument.Parse(result.Stdout).RootElement;
        Assert.Equal(FerSharpInfo.Version, info.GetProperty("fersharp_version").GetString());
        Assert.Equal(Environment.ProcessorCount, info.GetProperty("logical_cores").GetInt32());
        Assert.Equal(JsonValueKind.Null, info.GetProperty("libtorch_error").ValueKind);
        Assert.True(info.GetProperty("libtorch_threads").GetInt32() >= 1);
        Assert.Matches(@"^\d+\.\d+", info.GetProperty("opencv_version").GetString());
        Assert.Equal("BlazeFace", info.GetProperty("face_detector").GetString());
        Assert.Equal(JsonValueKind.Null, info.GetProperty("blazeface_error").ValueKind);
        var cascade = info.GetProperty("cascade_path").GetString()!;
        Assert.Equal(File.Exists(cascade), info.GetProperty("cascade_found").GetBoolean());

        var models = info.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        var shippedDir = ModelCatalog.ModelsDirectory()!;
        var shipped = Directory.GetDirectories(shippedDir).Where(d => File.Exists(Path.Combine(d, "model.json"))).Select(Path.GetFileName).Order();
        Assert.Equal(shipped, models.Keys.Order());
        var best = EmotionModel.ReadMetadata(Path.Combine(shippedDir, "fer2013-best"));
        Assert.True(models["fer2013-best"].GetProperty("is_default").GetBoolean());
        Assert.Single(models.Values, m => m.GetProperty("is_default").GetBoolean());
        Assert.Equal(best.Metrics["privatetest_accuracy"], models["fer2013-best"].GetProperty("privatetest_accuracy").GetDouble());
        Assert.Equal(best.Parameters, models["fer2013-best"].GetProperty("parameters").GetInt64());
    }

    [Fact]
    public void A_broken_package_is_listed_with_its_error_and_the_rest_still_report()
    {
        using var dir = new TempDir();
        var good = Path.Combine(dir.Path, "fer2013-realtime");
        Directory.CreateDirectory(good);
        foreach (var file in Directory.GetFiles(Path.Combine(ModelCatalog.ModelsDirectory()!, "fer2013-realtime")))
        {
            File.Copy(file, Path.Combine(good, Path.GetFileName(file)));
        }
        var broken = Path.Combine(dir.Path, "broken");
        Directory.CreateDirectory(broken);
        File.WriteAllText(Path.Combine(broken, "model.json"), "{ not json");

        var result = Info(new Dictionary<string, string?> { ["FERSHARP_MODELS"] = dir.Path });
        Assert.True(result.ExitCode == 0, result.Stderr);
        var info = JsonDocument.Parse(result.Stdout).RootElement;
        Assert.Equal(dir.Path, info.GetProperty("models_directory").GetString());
        var models = info.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        Assert.Contains("not a valid model.json", models["broken"].GetProperty("error").GetString());
        Assert.Equal(JsonValueKind.Null, models["fer2013-realtime"].GetProperty("error").ValueKind);
        Assert.True(models["fer2013-realtime"].GetProperty("is_default").GetBoolean());
        Assert.Equal(dir.Path, info.GetProperty("environment").GetProperty("FERSHARP_MODELS").GetString());
    }
}

/// <summary>Shipped models named without their folder (<c>-m fer2013-realtime</c>) from any directory.</summary>
public class ModelNameTests
{
    [Fact]
    public void A_shipped_model_can_be_named_and_a_misspelt_name_lists_the_shipped_ones()
    {
        var models = ModelCatalog.ModelsDirectory()!;
        Assert.Equal(Path.Combine(models, "fer2013-realtime"), ModelCatalog.Resolve("fer2013-realtime"));
        Assert.Equal("fer2013-realtime", EmotionModel.ReadMetadata("fer2013-realtime").Name);
        using var dir = new TempDir();
        // A path that exists is taken as given, and a path with a folder in it is never looked up by name.
        Assert.Equal(dir.Path, ModelCatalog.Resolve(dir.Path));
        Assert.Equal("elsewhere/fer2013-realtime", ModelCatalog.Resolve("elsewhere/fer2013-realtime"));

        var misspelt = Assert.Throws<FileNotFoundException>(() => EmotionModel.ReadMetadata("fer2013-realtme"));
        Assert.Contains("shipped models: fer2013-best, fer2013-realtime", misspelt.Message);
        Assert.DoesNotContain("shipped models", Assert.Throws<FileNotFoundException>(() => EmotionModel.ReadMetadata("elsewhere/x")).Message);

        // The CLI from a directory far from the repository.
        var png = dir.File("face.png");
        File.WriteAllBytes(png, FaceImages.EncodePng(Synthetic.Patterns(1).Face(0)));
        var result = Cli.RunIn(dir.Path, "predict", png, "-m", "fer2013-realtime", "--format", "json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Single(JsonDocument.Parse(result.Stdout).RootElement[0].GetProperty("faces").EnumerateArray());
    }
}
