using System.CommandLine;

using FerSharp.Inference;

namespace FerSharp.Cli.Commands;

/// <summary><c>--detector</c>: which face detector, for the commands that find faces.</summary>
internal static class DetectorOption
{
    public static Option<FaceDetectorKind> Create() => new("--detector")
    {
        Description = "Face detector: BlazeFace (a small network: finds more faces, tilted ones too, with fewer false detections) or Haar (OpenCV's frontal-face cascade: no network, upright faces only).",
        DefaultValueFactory = _ => FaceDetectorKind.BlazeFace,
    };
}
