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
        var recognition = new RecognitionOptions();
        recognition.Tta.Description += " For uploads; a request's ?tta= overrides it.";
        var command = new Command("serve", "Serve the JSON API (POST /api/v1/recognize, WebSocket /api/v1/stream) and a live web page.")
        {
            urls, model, maxBody, concurrency, queue, timeout, engine,
        };
        recognition.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var options = new ServerOptions
            {
                Urls = parse.GetValue(urls)!,
                ModelPath = parse.GetValue(model),
                MaxBodyBytes = (long)(OptionRules.Within(parse, maxBody, 0.001, 1024 * 1024, "a size in MB above 0") * 1024 * 1024),
                MaxConcurrentInference = parse.GetValue(concurrency),
                MaxQueuedInference = parse.GetValue(queue),
                RequestTimeout = TimeSpan.FromSeconds(OptionRules.Within(parse, timeout, 0.001, 24 * 3600, "seconds above 0, up to a day")),
                Recognition = recognition.Read(parse),
            };
            // Checked (ServerOptions names each option it refuses; the two numbers above are checked first because
            // their conversions fail on NaN) and loaded here rather than by the server, so that bad settings and
            // the engine choice fail before the model's load (seconds) and before anything listens.
            options.Validate();
            using var recognizer = EmotionRecognizer.Load(options.ModelPath, options.Recognition);
            EngineOption.Apply(recognizer.Model, parse.GetValue(engine));
            await using var app = FerServer.Build(options, recognizer);
            await app.StartAsync(ct).ConfigureAwait(false);
            AnsiConsole.MarkupLineInterpolated($"serving on [bold]{string.Join(", ", app.Urls)}[/] — open it in a browser; Ctrl+C stops");
            AnsiConsole.MarkupLineInterpolated($"[grey]model {recognizer.Model.Metadata.Name}, {EngineOption.Describe(recognizer.Model)}[/]");
            AnsiConsole.MarkupLineInterpolated($"[grey]photos: {RecognitionOptions.Describe(recognizer)} (a request's ?tta= overrides); live frames: one view, the fast detector settings[/]");
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
