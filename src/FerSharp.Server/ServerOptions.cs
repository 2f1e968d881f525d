using FerSharp.Inference;

using Microsoft.AspNetCore.Http;

namespace FerSharp.Server;

/// <summary>Settings of <c>fer serve</c>.</summary>
public sealed record ServerOptions
{
    /// <summary>Listen addresses; loopback by default so nothing is exposed unless asked.</summary>
    public string Urls { get; init; } = "http://127.0.0.1:5080";
    /// <summary>Model package; null means the default shipped model.</summary>
    public string? ModelPath { get; init; }
    public long MaxBodyBytes { get; init; } = 10 * 1024 * 1024;
    /// <summary>Recognitions running at once; under load each photo's detection and network run on one core.</summary>
    public int MaxConcurrentInference { get; init; } = 2;
    /// <summary>Requests allowed to wait for a slot; more are answered 503 with Retry-After.</summary>
    public int MaxQueuedInference { get; init; } = 32;
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary><c>GET /metrics</c> in Prometheus text format (on by default).</summary>
    public bool Metrics { get; init; } = true;
    /// <summary>
    /// When set, every request but <c>/healthz</c> and the page's static files must carry it, as
    /// <c>X-API-Key</c> or <c>Authorization: Bearer</c>; others get 401. Compared in constant time.
    /// </summary>
    public string? ApiKey { get; init; }
    /// <summary>Origins allowed to call the API from a browser on another site (CORS); empty: same origin only.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [];
    /// <summary>Log lines as JSON (one object per line) rather than plain text.</summary>
    public bool JsonLog { get; init; } = true;
    /// <summary>Log each request (a debug line); off, only warnings, errors and start/stop.</summary>
    public bool LogRequests { get; init; }
    /// <summary>On SIGTERM or Ctrl+C, how long in-flight requests may take to finish before the server stops anyway.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>Largest WebSocket frame (one JPEG).</summary>
    public int MaxFrameBytes { get; init; } = 4 * 1024 * 1024;
    /// <summary>
    /// How uploads are recognized when the server loads its own model (a recognizer passed to
    /// <see cref="FerServer.Build"/> brings its own); its <see cref="RecognizerOptions.DetectorKind"/> is also the live stream's detector.
    /// </summary>
    public RecognizerOptions Recognition { get; init; } = new();
    /// <summary>Haar settings for the live WebSocket stream when the detector is Haar (the fast video settings by default).</summary>
    public HaarDetectorOptions StreamDetector { get; init; } = HaarDetectorOptions.Video;
    /// <summary>BlazeFace settings for the live WebSocket stream when the detector is BlazeFace (the fast video settings by default).</summary>
    public BlazeFaceOptions StreamBlazeFace { get; init; } = BlazeFaceOptions.Video;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting out of range, before anything loads or listens.</summary>
    public void Validate()
    {
        var urls = Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (urls.Length == 0) throw new ArgumentException("listen address (--urls): none given; expected e.g. http://127.0.0.1:5080");
        foreach (var url in urls)
        {
            // Kestrel's own parser, so that what passes here also binds (http://*:5080 and http://+:5080 included).
            try
            {
                _ = BindingAddress.Parse(url);
            }
            catch (FormatException)
            {
                throw new ArgumentException($"listen address (--urls) '{url}': expected a URL such as http://127.0.0.1:5080 or http://0.0.0.0:8080");
            }
        }
        if (MaxBodyBytes < 1) throw new ArgumentException($"largest request body (--max-body-mb) must be positive, got {MaxBodyBytes} bytes");
        if (MaxConcurrentInference < 1) throw new ArgumentException($"recognitions at once (--max-concurrency) must be at least 1, got {MaxConcurrentInference}");
        if (MaxQueuedInference < 0) throw new ArgumentException($"queued recognitions (--max-queue) must be 0 or more, got {MaxQueuedInference}");
        if (RequestTimeout <= TimeSpan.Zero) throw new ArgumentException($"request timeout (--timeout) must be positive, got {RequestTimeout.TotalSeconds} s");
        if (MaxFrameBytes < 1) throw new ArgumentException($"largest stream frame must be positive, got {MaxFrameBytes} bytes");
        if (ShutdownTimeout < TimeSpan.Zero) throw new ArgumentException($"shutdown timeout (--shutdown-timeout) must be 0 or more, got {ShutdownTimeout.TotalSeconds} s");
        if (ApiKey is { } key && (key.Length < 16 || key.Any(char.IsWhiteSpace)))
        {
            throw new ArgumentException("API key (--api-key, FERSHARP_API_KEY) must be at least 16 characters without spaces");
        }
        foreach (var origin in CorsOrigins)
        {
            if (origin != "*" && (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/"))
            {
                throw new ArgumentException($"CORS origin (--cors-origin) '{origin}': expected an origin such as https://app.example.com, or *");
            }
        }
        Recognition.Validate();
    }
}
