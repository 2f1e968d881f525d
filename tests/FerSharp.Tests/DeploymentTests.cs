using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;

using FerSharp.Data;

using YamlDotNet.RepresentationModel;

namespace FerSharp.Tests;

/// <summary>
/// The container image's files and the Kubernetes manifests, checked offline: they parse, carry the fields a
/// cluster needs, and run only commands and options the CLI has; the image's entry point runs the real server.
/// </summary>
public sealed partial class DeploymentTests
{
    private static List<YamlMappingNode> Documents(string relative)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Repository.PathOf(relative));
        stream.Load(reader);
        return stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
    }

    private static YamlNode At(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            node = node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var child)
                ? child
                : throw new Xunit.Sdk.XunitException($"missing '{key}' (path {string.Join('.', path)})");
        }
        return node;
    }

    private static string Text(YamlNode node, params string[] path) => ((YamlScalarNode)At(node, path)).Value!;

    private static YamlMappingNode Kind(List<YamlMappingNode> documents, string kind) =>
        Assert.Single(documents, d => Text(d, "kind") == kind);

    /// <summary>Every option of a fer command line is one the command's --help lists.</summary>
    private static void AssertCliKnows(IReadOnlyList<string> args)
    {
        var command = args.TakeWhile(a => !a.StartsWith('-') && !a.StartsWith('/')).ToList();
        var help = Cli.Run([.. command, "--help"]);
        Assert.True(help.ExitCode == 0, $"fer {string.Join(' ', command)}: {help.Stderr}");
        foreach (var option in args.Where(a => a.StartsWith("--", StringComparison.Ordinal)))
        {
            Assert.Contains(option, help.Stdout);
        }
    }

    [Fact]
    public void The_serving_manifest_has_probes_resources_a_service_and_an_autoscaler()
    {
        var documents = Documents("deploy/k8s/serve.yaml");
        var deployment = Kind(documents, "Deployment");
        var container = (YamlMappingNode)((YamlSequenceNode)At(deployment, "spec", "template", "spec", "containers")).Children[0];
        Assert.Equal("/healthz", Text(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("/healthz", Text(container, "livenessProbe", "httpGet", "path"));
        foreach (var kind in new[] { "requests", "limits" })
        {
            Assert.NotEmpty(Text(container, "resources", kind, "memory"));
            Assert.NotEmpty(Text(container, "resources", kind, "cpu"));
        }
        Assert.Equal("true", Text(container, "securityContext", "readOnlyRootFilesystem"));
        Assert.Equal("true", Text(deployment, "spec", "template", "spec", "securityContext", "runAsNonRoot"));
        var args = ((YamlSequenceNode)At(container, "args")).Children.Select(n => ((YamlScalarNode)n).Value!).ToList();
        Assert.Equal("serve", args[0]);
        AssertCliKnows(args);
        // The grace period outlasts the server's own drain.
        var drain = double.Parse(args[args.IndexOf("--shutdown-timeout") + 1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(double.Parse(Text(deployment, "spec", "template", "spec", "terminationGracePeriodSeconds"), System.Globalization.CultureInfo.InvariantCulture) > drain);

        var labels = (YamlMappingNode)At(deployment, "spec", "template", "metadata", "labels");
        var service = Kind(documents, "Service");
        foreach (var (key, value) in (YamlMappingNode)At(service, "spec", "selector"))
        {
            Assert.Equal(((YamlScalarNode)value).Value, ((YamlScalarNode)labels.Children[key]).Value);
        }
        var autoscaler = Kind(documents, "HorizontalPodAutoscaler");
        Assert.Equal(Text(deployment, "metadata", "name"), Text(autoscaler, "spec", "scaleTargetRef", "name"));
        var metric = (YamlMappingNode)((YamlSequenceNode)At(autoscaler, "spec", "metrics")).Children[0];
        Assert.Equal("cpu", Text(metric, "resource", "name"));
    }

    [Fact]
    public void The_batch_job_is_indexed_and_gives_each_worker_its_shard_and_file()
    {
        var job = Kind(Documents("deploy/k8s/label-photos-job.yaml"), "Job");
        Assert.Equal("Indexed", Text(job, "spec", "completionMode"));
        var completions = int.Parse(Text(job, "spec", "completions"), System.Globalization.CultureInfo.InvariantCulture);
        var container = (YamlMappingNode)((YamlSequenceNode)At(job, "spec", "template", "spec", "containers")).Children[0];
        var script = ((YamlScalarNode)((YamlSequenceNode)At(container, "args")).Children[0]).Value!;
        var fer = FerCall().Match(script);
        Assert.True(fer.Success, script);
        var args = fer.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        Assert.Equal("predict", args[0]);
        Assert.Equal($"$JOB_COMPLETION_INDEX/{completions}", args[args.IndexOf("--shard") + 1]);
        Assert.Contains("$JOB_COMPLETION_INDEX", args[args.IndexOf("--out") + 1]);
        Assert.Contains("--resume", args);
        AssertCliKnows(args);
    }

    [GeneratedRegex(@"entrypoint\.sh (.*)$")]
    private static partial Regex FerCall();

    [Fact]
    public void The_image_runs_as_a_non_root_user_with_a_health_check_and_the_entry_point()
    {
        var dockerfile = File.ReadAllLines(Repository.PathOf("deploy/Dockerfile"));
        Assert.Equal(2, dockerfile.Count(l => l.StartsWith("FROM ", StringComparison.Ordinal))); // build, then runtime
        var user = dockerfile.Last(l => l.StartsWith("USER ", StringComparison.Ordinal));
        Assert.NotEqual("USER root", user);
        Assert.NotEqual("USER 0", user);
        Assert.Contains(dockerfile, l => l.StartsWith("HEALTHCHECK", StringComparison.Ordinal) && l.Contains("/healthz", StringComparison.Ordinal));
        Assert.Contains(dockerfile, l => l.StartsWith("ENTRYPOINT [\"/app/entrypoint.sh\"]", StringComparison.Ordinal));
        Assert.True(File.Exists(Repository.PathOf("deploy/entrypoint.sh")));
    }

    /// <summary>
    /// What the image's Dockerfile publishes: fer without libtorch, with the shipped models beside it. It
    /// recognizes on ONNX Runtime with the optimizing JIT and says plainly that training needs the full build.
    /// </summary>
    [Fact]
    public void A_recognition_only_publish_has_no_libtorch_recognizes_and_names_what_it_cannot_do()
    {
        using var dir = new TempDir();
        var output = dir.File("app");
        // Its own artifacts folder, so the repository's obj/ (restored with libtorch) is left as it is.
        var environment = new Dictionary<string, string?> { ["DOTNET_JITMinOpts"] = null, ["GLIBC_TUNABLES"] = null };
        foreach (var key in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)))
        {
            environment[key] = null;
        }
        var publish = Dotnet.Run(Repository.Root, ["publish", Repository.PathOf("src/FerSharp.Cli/FerSharp.Cli.csproj"), "-c", "Release", "-r", "linux-x64",
            "--self-contained", "false", "-o", output, "--artifacts-path", dir.File("artifacts"), "-p:FerSharpRecognitionOnly=true", "-nologo", "-v", "quiet"], environment);
        Assert.True(publish.ExitCode == 0, publish.Stdout + publish.Stderr);
        Assert.Empty(Directory.GetFiles(output, "libtorch*", SearchOption.AllDirectories));
        Assert.True(File.Exists(Path.Combine(output, "models", "fer2013-best", "model.onnx")), "the shipped models are not beside fer.dll");

        var photo = dir.File("face.png");
        File.WriteAllBytes(photo, FaceImages.EncodePng(Synthetic.Patterns(1, seed: 4).Face(2)));
        var predict = Dotnet.Run(dir.Path, [Path.Combine(output, "fer.dll"), "predict", photo, "--format", "json"], environment);
        Assert.True(predict.ExitCode == 0, predict.Stderr);
        Assert.Contains("\"engine\": \"OnnxRuntime\"", predict.Stdout);
        var export = Dotnet.Run(dir.Path, [Path.Combine(output, "fer.dll"), "models", "export", "fer2013-realtime", dir.File("x.onnx")], environment);
        Assert.NotEqual(0, export.ExitCode);
        Assert.Contains("no libtorch", export.Stderr);
        Assert.DoesNotContain("   at ", export.Stderr);
    }

    /// <summary>
    /// The entry point as the image runs it: configured by
    /// environment only, it serves, demands the API key, and stops cleanly on SIGTERM.
    /// </summary>
    [Fact]
    public async Task The_entry_point_serves_from_environment_settings_and_stops_on_SIGTERM()
    {
        var script = Path.Combine(AppContext.BaseDirectory, "entrypoint-under-test.sh");
        File.Copy(Repository.PathOf("deploy/entrypoint.sh"), script, overwrite: true);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var info = new ProcessStartInfo(script) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["FERSHARP_URLS"] = "http://127.0.0.1:0";
        info.Environment["FERSHARP_API_KEY"] = "entrypoint-key-0123456789";
        info.Environment["FERSHARP_MODEL"] = "fer2013-realtime";
        info.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var address = await Processes.ServingAddressAsync(process, TimeSpan.FromMinutes(2));
        Assert.True(address != null, $"the entry point did not serve: {(process.HasExited ? await stderr : "")}");
        using var http = new HttpClient { BaseAddress = address };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/model")).StatusCode);
        http.DefaultRequestHeaders.Add("X-API-Key", "entrypoint-key-0123456789");
        Assert.Contains("\"fer2013-realtime\"", await http.GetStringAsync("/api/v1/model"));
        Assert.Equal(0, Processes.Signal(process.Id, 15));
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "the server did not stop");
        Assert.Equal(0, process.ExitCode);
    }
}
