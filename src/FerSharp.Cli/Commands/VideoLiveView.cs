using System.Diagnostics;
using System.Globalization;

using FerSharp.Inference;

using Spectre.Console;
using Spectre.Console.Rendering;

namespace FerSharp.Cli.Commands;

/// <summary>
/// What <c>fer video</c> shows in a terminal while it runs: how far it is and how fast, and a row per face on
/// screen with its expression and probability bars, so a webcam's expressions can be read live.
/// </summary>
internal sealed class VideoLiveView(string source, IReadOnlyList<string> classes)
{
    private const int BarWidth = 20;
    private static readonly TimeSpan RefreshEvery = TimeSpan.FromMilliseconds(100);

    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private TimeSpan? _lastRefresh;
    private IReadOnlyList<TrackedFace> _faces = [];
    private int _framesRead;
    private int? _frameCount;

    /// <summary>Takes in a frame; true when the screen is due for a redraw (at most ten times a second).</summary>
    public bool Update(VideoFrame frame, int? frameCount)
    {
        _faces = frame.Faces;
        _framesRead = frame.Index + 1;
        _frameCount = frameCount;
        if (_lastRefresh is { } last && _watch.Elapsed - last < RefreshEvery) return false;
        _lastRefresh = _watch.Elapsed;
        return true;
    }

    public IRenderable Render()
    {
        var seconds = _watch.Elapsed.TotalSeconds;
        var fps = _framesRead / Math.Max(seconds, 1e-9);
        var position = _frameCount is { } total
            ? $"frame {_framesRead}/{total} ({100.0 * _framesRead / Math.Max(total, 1):F0} %)" + (fps > 0 && total > _framesRead ? $", about {Remaining((total - _framesRead) / fps)} left" : "")
            : $"frame {_framesRead}";
        var header = new Markup(Markup.Escape($"{source}: {position}, {fps:F1} FPS, {_faces.Count} face{(_faces.Count == 1 ? "" : "s")}"));
        if (_faces.Count == 0) return new Rows(header, new Markup("[grey]no face in view[/]"));
        var table = new Table().Border(TableBorder.Rounded).AddColumns("id", "box (x,y,w,h)", "expression", "probabilities");
        foreach (var tracked in _faces)
        {
            var face = tracked.Face;
            var b = face.Box;
            table.AddRow(
                new Text(tracked.Id.ToString(CultureInfo.InvariantCulture)),
                new Text($"{b.X},{b.Y},{b.Width},{b.Height}"),
                new Markup($"[bold]{Markup.Escape(face.Emotion)}[/] {face.Confidence:P0}"),
                Bars(face));
        }
        return new Rows(header, table);
    }

    private Markup Bars(FaceEmotion face)
    {
        var width = classes.Max(c => c.Length);
        var lines = classes.Select(c =>
        {
            var p = face.Probabilities.TryGetValue(c, out var v) ? v : 0f;
            var filled = (int)Math.Round(p * BarWidth);
            var colour = c == face.Emotion ? "green" : "grey";
            return $"{Markup.Escape(c.PadRight(width))} [{colour}]{new string('█', filled)}[/]{new string('·', BarWidth - filled)} {p,4:P0}";
        });
        return new Markup(string.Join('\n', lines));
    }

    private static string Remaining(double seconds) =>
        seconds < 90 ? $"{seconds:F0} s" : $"{seconds / 60:F0} min";
}
