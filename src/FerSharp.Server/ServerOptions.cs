using FerSharp.Inference;

namespace FerSharp.Server;

/// <summary>Settings of <c>fer serve</c>.</summary>
public sealed record ServerOptions
{
    /// <summary>Listen addresses; loopback by default so nothing is exposed unless asked.</summary>
    public string Urls { get; init; } = "http://127.0.0.1:5080";
    /// <summary>Model package; null means the default shipped model.</summary>
    public string? ModelPath { get; init; }
    public long MaxBodyBytes { get; init; } = 10 * 1024 * 1024;
    /// <summary>Recognitions running at once (each already uses all cores through libtorch).</summary>
    public int MaxConcurrentInference { get; init; } = 2;
    /// <summary>Requests allowed to wait for a slot; more are answered 503 with Retry-After.</summary>
    public int MaxQueuedInference { get; init; } = 32;
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Largest WebSocket frame (one JPEG).</summary>
    public int MaxFrameBytes { get; init; } = 4 * 1024 * 1024;
    /// <summary>The face detector, for uploads and the live stream.</summary>
    public FaceDetectorKind DetectorKind { get; init; } = FaceDetectorKind.BlazeFace;
    /// <summary>Haar settings for the live WebSocket stream when <see cref="DetectorKind"/> is Haar (the fast video settings by default).</summary>
    public HaarDetectorOptions StreamDetector { get; init; } = HaarDetectorOptions.Video;
    /// <summary>BlazeFace settings for the live WebSocket stream when <see cref="DetectorKind"/> is BlazeFace (the fast video settings by default).</summary>
    public BlazeFaceOptions StreamBlazeFace { get; init; } = BlazeFaceOptions.Video;
}
