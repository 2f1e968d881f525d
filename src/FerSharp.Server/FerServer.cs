using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Reflection;
using System.Text.Json;

using FerSharp.Evaluation;
using FerSharp.Inference;

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

using Prometheus;

using Mat = OpenCvSharp.Mat;

namespace FerSharp.Server;

/// <summary>
/// The HTTP API and web page: <c>POST /api/v1/recognize[?tta=none|flip|crops]</c>, <c>GET /api/v1/model</c>, <c>GET /healthz</c>,
/// WebSocket <c>/api/v1/stream</c> (JPEG frames in, faces out), OpenAPI at <c>/openapi/v1.json</c>, page at <c>/</c>.
/// </summary>
public static class FerServer
{
    // Relaxed escaping: error messages quote values ('crop'), and \u0027 in a JSON body is noise to a reader;
    // HTML-sensitive characters need no escaping in a JSON API response.
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Builds the app; the caller owns <paramref name="recognizer"/> when it passes one.</summary>
    public static WebApplication Build(ServerOptions options, EmotionRecognizer? recognizer = null, Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxBodyBytes);
        builder.Logging.ClearProviders();
        if (logging != null) logging(builder.Logging);
        else if (options.JsonLog) builder.Logging.AddJsonConsole(o => o.IncludeScopes = false);
        else builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        // Requests are logged only when asked (two lines each otherwise: 312 KB for 230 requests); routing chatter never.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", options.LogRequests ? LogLevel.Information : LogLevel.Warning);
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);
        if (options.CorsOrigins.Count > 0)
        {
            builder.Services.AddCors(cors => cors.AddDefaultPolicy(policy =>
            {
                if (options.CorsOrigins.Contains("*")) policy.AllowAnyOrigin();
                else policy.WithOrigins([.. options.CorsOrigins]);
                policy.AllowAnyHeader().WithMethods("GET", "POST");
            }));
        }
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            ApiDocument.Describe(document);
            return Task.CompletedTask;
        }));
        builder.Services.AddRequestTimeouts(o => o.DefaultPolicy = new RequestTimeoutPolicy
        {
            Timeout = options.RequestTimeout,
            TimeoutStatusCode = StatusCodes.Status504GatewayTimeout,
        });
        var ownsRecognizer = recognizer == null;
        var fer = recognizer ?? EmotionRecognizer.Load(options.ModelPath, options.Recognition);
        builder.Services.AddSingleton(fer);
        var gate = new InferenceGate(options.MaxConcurrentInference, options.MaxQueuedInference);
        builder.Services.AddSingleton(gate);
        var trim = new IdleMemoryTrim(gate, TimeSpan.FromSeconds(1));
        // Live frames use the fast settings (BlazeFace with one look per frame instead of up to three and a photo's
        // looks every tenth frame, faces followed between them; Haar about 3x quicker); uploads keep the photo ones.
        var streamDetector = new StreamDetector(FaceDetectors.Create(options.Recognition.DetectorKind, options.StreamDetector, options.StreamBlazeFace));
        builder.Services.AddSingleton(streamDetector);
        var metrics = new ServerMetrics(fer.Model.Metadata.Name, fer.Model.Engine.ToString());
        builder.Services.AddSingleton(metrics);

        var app = builder.Build();
        if (ownsRecognizer) app.Lifetime.ApplicationStopped.Register(fer.Dispose);
        app.Lifetime.ApplicationStopped.Register(streamDetector.Detector.Dispose);
        app.Lifetime.ApplicationStopped.Register(trim.Dispose);
        app.UseExceptionHandler(errors => errors.Run(async context =>
        {
            // Never send stack traces; the log has them, keyed by the trace id we return.
            var error = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            var (status, message) = error switch
            {
                BadHttpRequestException bad => (bad.StatusCode, bad.StatusCode == 413 ? TooLarge(options) : "bad request"),
                _ => (StatusCodes.Status500InternalServerError, "internal error"),
            };
            context.Response.StatusCode = status;
            await context.Response.WriteAsJsonAsync(new { error = message, trace_id = Activity.Current?.Id ?? context.TraceIdentifier }, Json).ConfigureAwait(false);
        }));
        if (options.CorsOrigins.Count > 0) app.UseCors();
        if (options.ApiKey is { } apiKey) app.Use(ApiKeyCheck(apiKey, metrics));
        if (options.Metrics) app.UseHttpMetrics(o => o.SetMetricFactory(Metrics.WithCustomRegistry(metrics.Registry)));
        app.UseStatusCodePages(async context =>
        {
            // 404 and 405 answer in JSON like every other error, instead of an empty body.
            var response = context.HttpContext.Response;
            response.ContentType = "application/json";
            var message = response.StatusCode switch
            {
                StatusCodes.Status404NotFound => $"no such endpoint: {context.HttpContext.Request.Path}",
                StatusCodes.Status405MethodNotAllowed => $"{context.HttpContext.Request.Method} is not allowed on {context.HttpContext.Request.Path}",
                var other => $"status {other}",
            };
            await response.WriteAsync(JsonSerializer.Serialize(new { error = message }, Json)).ConfigureAwait(false);
        });
        app.UseRequestTimeouts();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(20) });
        app.MapOpenApi();

        app.MapGet("/healthz", () => Results.Json(new { status = "ok" })).WithSummary("Liveness check: 200 {\"status\":\"ok\"} once the model is loaded.");
        if (options.Metrics) app.MapMetrics("/metrics", metrics.Registry);
        app.MapGet("/api/v1/model", (EmotionRecognizer r) => Results.Json(ModelInfo(r), Json)).WithSummary("The model in use.");
        app.MapPost("/api/v1/recognize", (HttpContext context, EmotionRecognizer r, InferenceGate gate, ServerMetrics m) => RecognizeAsync(context, r, gate, options, m))
            .WithSummary("Faces and expressions in one image: multipart field 'image', or a raw image/* body; ?tta=crops averages ten crops per face (more accurate, slower).")
            .Produces<ApiRecognition>(StatusCodes.Status200OK)
            .Produces<ApiError>(StatusCodes.Status400BadRequest)
            .Produces<ApiError>(StatusCodes.Status401Unauthorized)
            .Produces<ApiError>(StatusCodes.Status413PayloadTooLarge)
            .Produces<ApiError>(StatusCodes.Status415UnsupportedMediaType)
            .Produces<ApiError>(StatusCodes.Status503ServiceUnavailable)
            .Produces<ApiError>(StatusCodes.Status504GatewayTimeout)
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                ApiDocument.DescribeRecognize(operation);
                return Task.CompletedTask;
            })
            .DisableAntiforgery();
        app.Map("/api/v1/stream", (HttpContext context, EmotionRecognizer r, StreamDetector live, InferenceGate gate, ServerMetrics m, ILoggerFactory logs) => StreamAsync(context, r, live, gate, options, m, logs));
        MapPage(app);
        return app;
    }

    /// <summary>The weight of the past in a stream's face probabilities, as <c>fer video --smooth</c>'s default.</summary>
    public const double DefaultStreamSmoothing = 0.6;

    public const double MaxStreamSmoothing = VideoStream.MaxSmoothing;

    private static string TooLarge(ServerOptions options) => $"request body is over the {options.MaxBodyBytes / (1024 * 1024.0):0.#} MB limit";

    public static object ModelInfo(EmotionRecognizer recognizer)
    {
        ArgumentNullException.ThrowIfNull(recognizer);
        var m = recognizer.Model.Metadata;
        return new
        {
            name = m.Name,
            architecture = m.Architecture,
            classes = m.ClassNames,
            input_size = new[] { m.InputChannels, m.InputSize, m.InputSize },
            parameters = m.Parameters,
            flip_averaging = m.FlipAveraging,
            engine = recognizer.Model.Engine.ToString(),
            // Which of the package's networks answers: its int8 copy (the default on ONNX Runtime when it has one) or the float one.
            precision = recognizer.Model is FerSharp.Models.OnnxFaceClassifier { IsInt8: true } ? "int8" : "float",
            metrics = m.Metrics,
            // How uploads are recognized (a request's ?tta= overrides tta), so a client knows what its answers mean.
            recognition = new
            {
                detector = recognizer.Detector switch
                {
                    BlazeFaceDetector => FaceDetectorKind.BlazeFace.ToString(),
                    HaarFaceDetector => FaceDetectorKind.Haar.ToString(),
                    var other => other.GetType().Name,
                },
                max_look = (recognizer.Detector as BlazeFaceDetector)?.Options.MaxSide,
                margin = recognizer.Options.Margin,
                level_faces = recognizer.Options.LevelFaces && recognizer.Detector is BlazeFaceDetector,
                tta = recognizer.Options.Tta.ToString().ToLowerInvariant(),
            },
            fersharp_version = FerSharpInfo.Version,
        };
    }

    /// <summary>
    /// Requests without the key get 401 (the health check and the page's static files stay open, so probes and the
    /// page load; its API calls then need the key). Both sides are hashed first, so the comparison takes the
    /// same time whatever the key's length or how much of it matches.
    /// </summary>
    private static Func<HttpContext, RequestDelegate, Task> ApiKeyCheck(string apiKey, ServerMetrics metrics)
    {
        var expected = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(apiKey));
        return async (context, next) =>
        {
            var path = context.Request.Path;
            var open = path == "/healthz" || !(path.StartsWithSegments("/api") || path.StartsWithSegments("/metrics") || path.StartsWithSegments("/openapi"));
            string? given = context.Request.Headers["X-API-Key"].FirstOrDefault();
            if (given is null && context.Request.Headers.Authorization.FirstOrDefault() is { } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal))
            {
                given = auth["Bearer ".Length..].Trim();
            }
            var actual = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(given ?? ""));
            if (open || (given is not null && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(actual, expected)))
            {
                await next(context).ConfigureAwait(false);
                return;
            }
            metrics.Rejected.WithLabels("unauthorized").Inc();
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await context.Response.WriteAsJsonAsync(new { error = "missing or wrong API key: send it as X-API-Key or Authorization: Bearer" }, Json).ConfigureAwait(false);
        };
    }

    /// <summary>Finds and classifies the faces of one image, timing the two steps for <c>/metrics</c>.</summary>
    private static IReadOnlyList<FaceEmotion> Recognize(EmotionRecognizer recognizer, Mat image, TtaMode tta, ServerMetrics metrics)
    {
        var watch = Stopwatch.StartNew();
        var (boxes, finding) = recognizer.Locate(image);
        metrics.DetectorSeconds.Observe(watch.Elapsed.TotalSeconds);
        watch.Restart();
        var faces = recognizer.Classify(image, boxes, tta, finding);
        metrics.ClassifierSeconds.Observe(watch.Elapsed.TotalSeconds);
        metrics.Faces.Observe(faces.Count);
        return faces;
    }

    private static async Task<IResult> RecognizeAsync(HttpContext context, EmotionRecognizer recognizer, InferenceGate gate, ServerOptions options, ServerMetrics metrics)
    {
        var request = context.Request;
        var tta = recognizer.Options.Tta;
        if (request.Query.TryGetValue("tta", out var ttaValue))
        {
            if (!Enum.TryParse(ttaValue.ToString(), ignoreCase: true, out tta) || !Enum.IsDefined(tta))
            {
                return Error(StatusCodes.Status400BadRequest, $"query parameter 'tta': '{ttaValue}' is not one of none, flip, crops");
            }
        }
        if (request.ContentLength > options.MaxBodyBytes)
        {
            return Error(StatusCodes.Status413PayloadTooLarge, TooLarge(options));
        }
        byte[] bytes;
        if (request.HasFormContentType)
        {
            IFormCollection form;
            try
            {
                form = await request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
            }
            catch (InvalidDataException ex)
            {
                return Error(StatusCodes.Status400BadRequest, $"malformed multipart body: {ex.Message}");
            }
            var file = form.Files.GetFile("image");
            if (file == null) return Error(StatusCodes.Status400BadRequest, "multipart body needs a file field named 'image'");
            using var ms = new MemoryStream();
            await file.CopyToAsync(ms, context.RequestAborted).ConfigureAwait(false);
            bytes = ms.ToArray();
        }
        else if (request.ContentType is { } type && (type.StartsWith("image/", StringComparison.OrdinalIgnoreCase) || type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase)))
        {
            using var ms = new MemoryStream();
            await request.Body.CopyToAsync(ms, context.RequestAborted).ConfigureAwait(false);
            bytes = ms.ToArray();
        }
        else
        {
            return Error(StatusCodes.Status415UnsupportedMediaType, "send the image as multipart/form-data field 'image' or as a raw body with an image/* content type");
        }
        var (status, body) = await RecognizeBytesAsync(recognizer, image => Recognize(recognizer, image, tta, metrics).Select(ApiFace.Of).Cast<object>().ToList(), gate, metrics, bytes, context.RequestAborted).ConfigureAwait(false);
        if (status == StatusCodes.Status503ServiceUnavailable) context.Response.Headers.RetryAfter = "1";
        return Results.Json(body, Json, statusCode: status);
    }

    /// <summary>Shared by the HTTP and WebSocket paths: (status code, JSON body).</summary>
    private static async Task<(int Status, object Body)> RecognizeBytesAsync(EmotionRecognizer recognizer, Func<Mat, List<object>> recognize,
        InferenceGate gate, ServerMetrics metrics, byte[] bytes, CancellationToken ct)
    {
        metrics.Queue.Inc();
        IDisposable? lease;
        try
        {
            lease = await gate.TryEnterAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            metrics.Queue.Dec();
        }
        if (lease == null)
        {
            metrics.Rejected.WithLabels("busy").Inc();
            return (StatusCodes.Status503ServiceUnavailable, new { error = "server busy: too many recognitions queued; retry shortly" });
        }
        using var held = lease;
        using var running = metrics.Running.TrackInProgress();
        var watch = Stopwatch.StartNew();
        try
        {
            using var image = EmotionRecognizer.Decode(bytes, recognizer.Options.MaxImagePixels);
            var faces = await Task.Run(() => recognize(image), ct).ConfigureAwait(false);
            return (StatusCodes.Status200OK, new
            {
                faces,
                width = image.Width,
                height = image.Height,
                model = recognizer.Model.Metadata.Name,
                elapsed_ms = Math.Round(watch.Elapsed.TotalMilliseconds, 1),
            });
        }
        catch (InvalidDataException ex)
        {
            return (StatusCodes.Status400BadRequest, new { error = ex.Message });
        }
    }

    private static IResult Error(int status, string message) => Results.Json(new { error = message }, Json, statusCode: status);

    private static async Task StreamAsync(HttpContext context, EmotionRecognizer recognizer, StreamDetector live, InferenceGate gate, ServerOptions options, ServerMetrics metrics, ILoggerFactory logs)
    {
        var smoothing = DefaultStreamSmoothing;
        if (context.Request.Query.TryGetValue("smooth", out var smoothValue)
            && (!double.TryParse(smoothValue.ToString(), NumberStyles.Float, CultureInfo.InvariantCulture, out smoothing) || !(smoothing is >= 0 and <= MaxStreamSmoothing)))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsJsonAsync(new { error = $"query parameter 'smooth': '{smoothValue}' is not a number from 0 (off) to {MaxStreamSmoothing}" }, Json).ConfigureAwait(false);
            return;
        }
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsJsonAsync(new { error = "this endpoint takes a WebSocket: send JPEG frames as binary messages" }, Json).ConfigureAwait(false);
            return;
        }
        // One tracker per connection: a stream's frames come one after another, so faces keep their ids and
        // their probabilities are smoothed over time, as in `fer video`. Frames get one view per face whatever the
        // uploads' test-time augmentation (ten crops would cost a live stream ten times the time per face).
        var tracker = new FaceTracker(recognizer.Model.ClassNames, smoothing);
        var follower = new FaceFollower(live.Detector);
        // A stream lives longer than one request timeout.
        context.Features.Get<IHttpRequestTimeoutFeature>()?.DisableTimeout();
        var log = logs.CreateLogger("FerSharp.Server.Stream");
        using var socket = await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
        var ct = context.RequestAborted;
        var buffer = new byte[64 * 1024];
        var frame = 0;
        try
        {
            while (socket.State == WebSocketState.Open && !ct.IsCancellationRequested)
            {
                using var message = new MemoryStream();
                WebSocketReceiveResult received;
                var tooLarge = false;
                do
                {
                    received = await socket.ReceiveAsync(buffer, ct).ConfigureAwait(false);
                    if (received.MessageType == WebSocketMessageType.Close)
                    {
                        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).ConfigureAwait(false);
                        return;
                    }
                    if (message.Length + received.Count > options.MaxFrameBytes) tooLarge = true;
                    else message.Write(buffer, 0, received.Count);
                }
                while (!received.EndOfMessage);
                frame++;
                object reply;
                if (tooLarge)
                {
                    reply = new { frame, error = $"frame is over the {options.MaxFrameBytes / (1024 * 1024.0):0.#} MB limit" };
                }
                else if (received.MessageType != WebSocketMessageType.Binary)
                {
                    reply = new { frame, error = "send each frame as a binary message holding a JPEG or PNG image" };
                }
                else
                {
                    var (status, body) = await RecognizeBytesAsync(recognizer, image =>
                    {
                        var faces = recognizer.Recognize(image, follower, TtaMode.None);
                        metrics.Faces.Observe(faces.Count);
                        return tracker.Update(faces).Select(FaceJson.Of).ToList();
                    }, gate, metrics, message.ToArray(), ct).ConfigureAwait(false);
                    reply = status == 200 ? body : new { frame, error = JsonSerializer.SerializeToElement(body, Json).GetProperty("error").GetString() };
                }
                var json = JsonSerializer.SerializeToUtf8Bytes(reply, Json);
                await socket.SendAsync(json, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            log.LogInformation("stream closed after {Frames} frames: {Reason}", frame, ex.Message);
        }
    }

    private static void MapPage(WebApplication app)
    {
        var assembly = typeof(FerServer).Assembly;
        foreach (var (route, file, type) in new[]
                 {
                     ("/", "index.html", "text/html; charset=utf-8"),
                     ("/app.js", "app.js", "text/javascript; charset=utf-8"),
                     ("/style.css", "style.css", "text/css; charset=utf-8"),
                 })
        {
            var content = ReadResource(assembly, file);
            app.MapGet(route, () => Results.Bytes(content, type)).ExcludeFromDescription();
        }
    }

    private static byte[] ReadResource(Assembly assembly, string file)
    {
        var name = assembly.GetManifestResourceNames().Single(n => n.EndsWith("wwwroot." + file, StringComparison.Ordinal));
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        return ms.ToArray();
    }
}

/// <summary>The face detector of the live stream; each connection follows faces with it, and the app's recognizer classifies them.</summary>
internal sealed class StreamDetector(IFaceDetector detector)
{
    public IFaceDetector Detector { get; } = detector;
}
