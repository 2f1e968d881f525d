using System.CommandLine;

using FerSharp.Inference;
using FerSharp.Server;

using Microsoft.AspNetCore.Builder;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer serve</c>: the HTTP API and web page.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = "Listen address(es), ';'-separated. Loopback by default.", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var model = new Option<string?>("--model", "-m") { Description = "Model package folder (default: the shipped model)." };
        var maxBody = new Option<double>("--max-body-mb") { Description = "Largest request body in MB (larger: 413).", DefaultValueFactory = _ => 10 };
        var concurrency = new Option<int>("--max-concurrency") { Description = "Recognitions running at once.", DefaultValueFactory = _ => 2 };
        var queue = new Option<int>("--max-queue") { Description = "Recognitions waiting for a slot before 503.", DefaultValueFactory = _ => 32 };
        var timeout = new Option<double>("--timeout") { Description = "Request timeout in seconds (then 504).", DefaultValueFactory = _ => 30 };
        var engine = EngineOption.Create();
        var detector = DetectorOption.Create();
        var command = new Command("serve", "Serve the JSON API (POST /api/v1/recognize, WebSocket /api/v1/stream) and a live web page.")
        {
            urls, model, maxBody, concurrency, queue, timeout, engine, detector,
        };
        command.SetAction(async (parse, ct) =>
        {
            var options = new ServerOptions
            {
                Urls = parse.GetValue(urls)!,
                ModelPath = parse.GetValue(model),
                MaxBodyBytes = (long)(parse.GetValue(maxBody) * 1024 * 1024),
                MaxConcurrentInference = parse.GetValue(concurrency),
                MaxQueuedInference = parse.GetValue(queue),
                RequestTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                DetectorKind = parse.GetValue(detector),
            };
            // Loaded here rather than by the server so the engine choice is checked before anything listens.
            using var recognizer = EmotionRecognizer.Load(options.ModelPath, new RecognizerOptions { DetectorKind = options.DetectorKind });
            EngineOption.Apply(recognizer.Model, parse.GetValue(engine));
            await using var app = FerServer.Build(options, recognizer);
            await app.StartAsync(ct).ConfigureAwait(false);
            AnsiConsole.MarkupLineInterpolated($"serving on [bold]{string.Join(", ", app.Urls)}[/] — open it in a browser; Ctrl+C stops");
            AnsiConsole.MarkupLineInterpolated($"[grey]model {recognizer.Model.Metadata.Name}, {EngineOption.Describe(recognizer.Model)}[/]");
            try
            {
                await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return CliRunner.ExitOk;
        });
        return command;
    }
}
