using System.IO.Compression;
using System.Reflection;

namespace FerSharp.Tests;

/// <summary>
/// The NuGet package as an application outside this repository sees it: none of the repository's
/// Directory.Build files apply there, so the models must come from the package itself; recognition brings no
/// libtorch, needs no native fix and runs with the optimizing JIT.
/// </summary>
public class PackageTests
{
    [Fact]
    public void An_application_outside_the_repository_recognizes_with_the_package_alone_and_without_libtorch()
    {
        var root = RepositoryRoot();
        var configuration = typeof(FerSharp.Inference.EmotionRecognizer).Assembly
            .GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        // A version of its own, so a package from an earlier run in the NuGet cache is never used.
        var version = "0.0.0-test-" + Guid.NewGuid().ToString("N");
        using var dir = new TempDir();
        var feed = Directory.CreateDirectory(dir.File("feed")).FullName;
        var app = Directory.CreateDirectory(dir.File("app")).FullName;
        try
        {
            var pack = Run(root, "pack", Path.Combine(root, "src", "FerSharp", "FerSharp.csproj"), "-c", configuration,
                "--no-build", "-o", feed, $"-p:PackageVersion={version}");
            Assert.True(pack.ExitCode == 0, pack.Output);
            using (var package = ZipFile.OpenRead(Path.Combine(feed, $"FerSharp.{version}.nupkg")))
            {
                var entries = package.Entries.Select(e => e.FullName).ToHashSet();
                Assert.DoesNotContain(entries, e => e.StartsWith("buildTransitive/", StringComparison.Ordinal));
                Assert.Contains("contentFiles/any/any/models/fer2013-best/model.onnx", entries);
                Assert.Contains("contentFiles/any/any/models/fer2013-realtime/model.json", entries);
            }

            WriteApplication(app, feed, version);
            var build = Run(app, "build", "-c", "Release", "-nodeReuse:false", "-p:UseSharedCompilation=false");
            Assert.True(build.ExitCode == 0, build.Output);
            var output = Path.Combine(app, "bin", "Release", "net10.0");
            Assert.True(File.Exists(Path.Combine(output, "models", "fer2013-best", "model.json")));

            Assert.Empty(Directory.GetFiles(output, "*torch*", SearchOption.AllDirectories));
            Assert.NotEmpty(Directory.GetFiles(output, "libonnxruntime.so", SearchOption.AllDirectories));

            // Run from the temp folder, so the models are found beside the binaries and not in this repository.
            var run = Run(dir.Path, Path.Combine(output, "app.dll"));
            Assert.True(run.ExitCode == 0, run.Output);
            Assert.Contains("model fer2013-best, 7 probabilities summing to 1.000", run.Output);
            Assert.Contains("faces in a blank picture: 0", run.Output);
        }
        finally
        {
            var cached = Path.Combine(ElfVersionNeedTests.NuGetPackagesFolder(), "fersharp");
            if (Directory.Exists(Path.Combine(cached, version))) Directory.Delete(Path.Combine(cached, version), recursive: true);
            if (Directory.Exists(cached) && !Directory.EnumerateFileSystemEntries(cached).Any()) Directory.Delete(cached);
        }
    }

    private static void WriteApplication(string app, string feed, string version)
    {
        // Empty Directory.Build files stop MSBuild from looking further up (into /tmp and beyond).
        File.WriteAllText(Path.Combine(app, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(app, "Directory.Build.targets"), "<Project />");
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="fersharp-test" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="FerSharp" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using FerSharp.Inference;
            using OpenCvSharp;

            using var fer = EmotionRecognizer.Load();
            var face = new byte[48 * 48];
            for (var i = 0; i < face.Length; i++) face[i] = (byte)(i % 48 * 5);
            var p = fer.Model.PredictProbabilities([face])[0];
            Console.WriteLine($"model {fer.Model.Metadata.Name}, {p.Length} probabilities summing to {p.Sum():F3}");
            using var blank = new Mat(240, 320, MatType.CV_8UC3, Scalar.All(128));
            Console.WriteLine($"faces in a blank picture: {fer.Recognize(blank).Count}");
            """);
    }

    private sealed record Result(int ExitCode, string Output);

    private static Result Run(string workingDirectory, params string[] args)
    {
        var environment = new Dictionary<string, string?>
        {
            ["DOTNET_JITMinOpts"] = null, // recognition runs with the optimizing JIT
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        };
        // The test host's MSBuild settings belong to the build that ran these tests, not to this one.
        foreach (var key in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)))
        {
            environment[key] = null;
        }
        var result = Dotnet.Run(workingDirectory, args, environment);
        return new Result(result.ExitCode, $"dotnet {string.Join(' ', args)}\n{result.Stdout}\n{result.Stderr}");
    }

    private static string RepositoryRoot() => Repository.Root;
}
