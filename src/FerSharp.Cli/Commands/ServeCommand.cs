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
        var urls = new Option<string>("--urls") { Description = "Listen address(es), ';'-separated. Default: $FERSHARP_URLS, else loopback.", DefaultValueFactory = _ => Env("FERSHARP_URLS") ?? "http://127.0.0.1:5080" };
        var model = new Option<string?>("--model", "-m") { Description = "Model package folder or shipped model name. Default: $FERSHARP_MODEL, else the default shipped model.", DefaultValueFactory = _ => Env("FERSHARP_MODEL") };
        var maxBody = new Option<double>("--max-body-mb") { Description = "Largest request body in MB (larger: 413).", DefaultValueFactory = _ => 10 };
        var concurrency = new Option<int>("--max-concurrency") { Description = "Recognitions running at once.", DefaultValueFactory = _ => 2 };
        var queue = new Option<int>("--max-queue") { Description = "Recognitions waiting for a slot before 503.", DefaultValueFactory = _ => 32 };
        var timeout = new Option<double>("--timeout") { Description = "Request timeout in seconds (then 504).", DefaultValueFactory = _ => 30 };
        var noMetrics = new Option<bool>("--no-metrics") { Description = "Do not serve GET /metrics (Prometheus text format: requests, latency, faces, detector and classifier time, queue, refusals)." };
        var apiKey = new Option<string?>("--api-key") { Description = "Require this key (X-API-Key or Authorization: Bearer) on the API, /metrics and /openapi; others get 401. Default: $FERSHARP_API_KEY; none: no authentication.", DefaultValueFactory = _ => Env("FERSHARP_API_KEY") };
        var cors = new Option<string[]>("--cors-origin") { Description = "An origin whose web pages may call the API (repeat it, or * for any). Default: $FERSHARP_CORS_ORIGINS (comma-separated); none: same origin only.", DefaultValueFactory = _ => Env("FERSHARP_CORS_ORIGINS")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [] };
        var logFormat = new Option<string>("--log-format") { Description = "Log lines as json (one object per line) or text.", DefaultValueFactory = _ => Env("FERSHARP_LOG_FORMAT") ?? "json" };
        logFormat.AcceptOnlyFromAmong("json", "text");
        var logRequests = new Option<bool>("--log-requests") { Description = "Log every request (off: warnings, errors, start and stop only)." };
        var shutdown = new Option<double>("--shutdown-timeout") { Description = "On SIGTERM or Ctrl+C: stop accepting, and give requests in flight this many seconds to finish.", DefaultValueFactory = _ => 20 };
        var engine = EngineOption.Create();
        var precision = EngineOption.CreatePrecision();
        var recognition = new RecognitionOptions();
        recognition.Tta.Description += " For uploads; a request's ?tta= overrides it.";
        var command = new Command("serve", "Serve the JSON API (POST /api/v1/recognize, WebSocket /api/v1/stream) and a live web page.")
        {
            urls, model, maxBody, concurrency, queue, timeout, engine, precision, noMetrics, apiKey, cors, logFormat, logRequests, shutdown,
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
                Metrics = !parse.GetValue(noMetrics),
                ApiKey = parse.GetValue(apiKey) is { Length: > 0 } key ? key : null,
                CorsOrigins = parse.GetValue(cors) ?? [],
                JsonLog = parse.GetValue(logFormat) == "json",
                LogRequests = parse.GetValue(logRequests),
                ShutdownTimeout = TimeSpan.FromSeconds(OptionRules.Within(parse, shutdown, 0, 3600, "seconds from 0 to an hour")),
            };
            // Checked (ServerOptions names each option it refuses; the two numbers above are checked first because
            // their conversions fail on NaN) and loaded here rather than by the server, so that bad settings and
            // the engine choice fail before the model's load (seconds) and before anything listens.
            options.Validate();
            using var recognizer = EngineOption.LoadRecognizer(options.ModelPath, options.Recognition, parse.GetValue(engine), parse.GetValue(precision));
            await using var app = FerServer.Build(options, recognizer);
            await app.StartAsync(ct).ConfigureAwait(false);
            AnsiConsole.MarkupLineInterpolated($"serving on [bold]{string.Join(", ", app.Urls)}[/] — open it in a browser; Ctrl+C stops");
            if (options.ApiKey is null && app.Urls.Any(u => !IsLoopback(u)))
            {
                AnsiConsole.MarkupLine("[yellow]warning: listening beyond loopback without authentication: anyone who can reach this address can use it (--api-key, or a gateway in front)[/]");
            }
            AnsiConsole.MarkupLineInterpolated($"[grey]model {recognizer.Model.Metadata.Name}, {EngineOption.Describe(recognizer.Model)}[/]");
            AnsiConsole.MarkupLineInterpolated($"[grey]photos: {RecognitionOptions.Describe(recognizer)} (a request's ?tta= overrides); live frames: one view, the fast detector settings[/]");
            try
            {
                await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            // Stop accepting; requests in flight get the shutdown timeout to finish (HostOptions.ShutdownTimeout).
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return CliRunner.ExitOk;
        });
        return command;
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    private static bool IsLoopback(string url) =>
        Uri.TryCreate(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri)
        && (uri.IsLoopback || uri.Host == "localhost");
}
