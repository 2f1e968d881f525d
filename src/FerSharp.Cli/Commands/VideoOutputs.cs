using System.Text.Json;

using FerSharp.Inference;

using OpenCvSharp;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer video --jsonl</c>: one line per analysed frame, flushed at once so a reader sees it live.</summary>
internal static class VideoJsonLines
{
    public static void Write(TextWriter writer, VideoFrame frame)
    {
        var line = new { frame = frame.Index, time_s = Math.Round(frame.TimeSeconds, 3), faces = frame.Faces.Select(FaceJson.Of).ToList() };
        writer.WriteLine(JsonSerializer.Serialize(line));
        writer.Flush();
    }
}

/// <summary><c>fer video --show</c>: the annotated frames in an OpenCV (GTK) window.</summary>
internal sealed class VideoWindow : IDisposable
{
    private readonly string _name;

    public VideoWindow(string name)
    {
        _name = name;
        Cv2.NamedWindow(_name, WindowFlags.AutoSize);
    }

    /// <summary>Fails with a clear message before the model loads when there is no display to open a window on.</summary>
    public static void EnsureDisplay()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DISPLAY")) && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("WAYLAND_DISPLAY")))
        {
            throw new UserFacingException("--show needs a graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set); use --out to write an annotated copy instead");
        }
    }

    /// <summary>Draws and shows the frame; false once the user has pressed q or Esc or closed the window.</summary>
    public bool Show(VideoFrame frame, bool annotated)
    {
        if (!annotated) Annotator.Draw(frame.Image, frame.Faces.Select(t => t.Face).ToList(), frame.Faces.Select(t => t.Id).ToList());
        Cv2.ImShow(_name, frame.Image);
        // WaitKey also runs the window's event loop; 1 ms keeps the video's pace.
        var key = Cv2.WaitKey(1) & 0xFF;
        return key != 'q' && key != 27 && !Closed();
    }

    // GTK builds answer -1 (unsupported) for visibility; a window the user closed no longer exists, and
    // then its other properties are -1 too.
    private bool Closed() =>
        Cv2.GetWindowProperty(_name, WindowPropertyFlags.Visible) == 0 || Cv2.GetWindowProperty(_name, WindowPropertyFlags.AutoSize) < 0;

    public void Dispose() => Cv2.DestroyWindow(_name);
}
