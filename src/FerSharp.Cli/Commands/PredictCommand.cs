using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;

using FerSharp.Evaluation;
using FerSharp.Inference;
using FerSharp.Models;

using OpenCvSharp;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer predict</c>: expressions of every face in photos; <c>fer video</c>: in a video or camera stream.</summary>
internal static class PredictCommand
{
    private static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff",
    };

    /// <summary>The file name that stands for standard input.</summary>
    private const string StandardInput = "-";

    // A photo is a few MB; the cap stops a mistaken pipe (a video, a disk image) from filling memory.
    private const int MaxStandardInputBytes = 256 * 1024 * 1024;

    private static byte[] ReadStandardInput()
    {
        using var stdin = Console.OpenStandardInput();
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = stdin.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + read > MaxStandardInputBytes)
            {
                throw new InvalidDataException($"more than {MaxStandardInputBytes / (1024 * 1024)} MB on standard input; give a file instead");
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static readonly HashSet<string> VideoExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
    };

    private sealed record FileResult(string File, IReadOnlyList<FaceEmotion> Faces, string? Error);

    public static Command Create()
    {
        var inputs = new Argument<string[]>("files") { Description = "Images or folders (searched recursively); - reads one image from standard input.", Arity = ArgumentArity.OneOrMore };
        var model = new Option<string?>("--model", "-m") { Description = "Model package folder (default: the shipped model)." };
        var format = new Option<string>("--format", "-f") { Description = "Output: table, json or csv.", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json", "csv");
        var annotate = new Option<string?>("--annotate") { Description = "Write copies with boxes, labels and probability bars into this folder." };
        var noDetect = new Option<bool>("--no-detect") { Description = "Treat each image as one face crop (skip face detection)." };
        var recognition = new RecognitionOptions();
        var engine = EngineOption.Create();
        var command = new Command("predict", "Find every face in photos and say its expression with probabilities.") { inputs, model, format, annotate, noDetect };
        recognition.AddTo(command);
        command.Options.Add(engine);
        command.SetAction((parse, ct) =>
        {
            var files = ExpandInputs(parse.GetRequiredValue(inputs));
            var annotateDir = OptionRules.FolderToWrite(parse.GetValue(annotate), "--annotate");
            var settings = recognition.Read(parse) with { Detection = parse.GetValue(noDetect) ? FaceDetectionMode.Never : FaceDetectionMode.Auto };
            settings.Validate(); // now, not after the model's load
            using var recognizer = EmotionRecognizer.Load(parse.GetValue(model), settings);
            EngineOption.Apply(recognizer.Model, parse.GetValue(engine));
            if (annotateDir != null) Directory.CreateDirectory(annotateDir);
            var results = new List<FileResult>(files.Count);
            var progressConsole = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            void ProcessAll(Action? tick)
            {
                foreach (var file in files)
                {
                    ct.ThrowIfCancellationRequested();
                    results.Add(ProcessFile(recognizer, file, annotateDir));
                    tick?.Invoke();
                }
            }
            if (files.Count > 3 && progressConsole.Profile.Capabilities.Interactive)
            {
                progressConsole.Progress().Start(ctx =>
                {
                    var task = ctx.AddTask($"recognizing {files.Count} images", maxValue: files.Count);
                    ProcessAll(() => task.Increment(1));
                });
            }
            else
            {
                ProcessAll(null);
            }

            var classes = recognizer.Model.ClassNames;
            switch (parse.GetValue(format))
            {
                case "json":
                    Console.WriteLine(ToJson(results));
                    break;
                case "csv":
                    Console.Write(ToCsv(results, classes));
                    break;
                default:
                    PrintTable(results, recognizer.Model);
                    break;
            }
            foreach (var failed in results.Where(r => r.Error != null))
            {
                Console.Error.WriteLine($"fer: error: {failed.File}: {failed.Error}");
            }
            if (annotateDir != null && parse.GetValue(format) == "table")
            {
                AnsiConsole.MarkupLineInterpolated($"annotated copies in [bold]{annotateDir}[/]");
            }
            return Task.FromResult(results.Any(r => r.Error != null) ? CliRunner.ExitFailure : CliRunner.ExitOk);
        });
        return command;
    }

    private static List<string> ExpandInputs(IEnumerable<string> inputs)
    {
        var files = new List<string>();
        foreach (var input in inputs)
        {
            if (input == StandardInput)
            {
                if (files.Contains(StandardInput)) throw new ArgumentException("- (standard input) can be given only once");
                if (!Console.IsInputRedirected) throw new ArgumentException("- reads an image from standard input, but nothing is piped in (e.g. curl -s URL | fer predict -)");
                files.Add(input);
            }
            else if (Directory.Exists(input))
            {
                files.AddRange(Directory.EnumerateFiles(input, "*", SearchOption.AllDirectories)
                    .Where(f => ImageExtensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal));
            }
            else
            {
                files.Add(input); // a missing file is reported per file, like any other failure
            }
        }
        return files;
    }

    private static FileResult ProcessFile(EmotionRecognizer recognizer, string file, string? annotateDir)
    {
        // Outputs name standard input as such rather than as a bare "-".
        var name = file == StandardInput ? "(stdin)" : file;
        try
        {
            byte[] bytes;
            if (file == StandardInput)
            {
                bytes = ReadStandardInput();
            }
            else
            {
                if (!File.Exists(file)) return new FileResult(name, [], "no such file");
                if (VideoExtensions.Contains(Path.GetExtension(file))) return new FileResult(name, [], $"a video file: use fer video {file}");
                bytes = File.ReadAllBytes(file);
            }
            using var image = EmotionRecognizer.Decode(bytes, recognizer.Options.MaxImagePixels);
            var faces = recognizer.Recognize(image);
            if (annotateDir != null)
            {
                Annotator.Draw(image, faces);
                var ext = Path.GetExtension(file).ToLowerInvariant() is ".jpg" or ".jpeg" or ".png" or ".bmp" ? Path.GetExtension(file) : ".png";
                var stem = file == StandardInput ? "stdin" : Path.GetFileNameWithoutExtension(file);
                var target = Path.Combine(annotateDir, stem + ext);
                for (var n = 2; File.Exists(target); n++)
                {
                    target = Path.Combine(annotateDir, $"{stem}-{n}{ext}");
                }
                AtomicFile.WriteAllBytes(target, image.ImEncode(ext));
            }
            return new FileResult(name, faces, null);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or OpenCVException or UnauthorizedAccessException or ArgumentException)
        {
            return new FileResult(name, [], ex.Message);
        }
    }

    internal static string ToJson(IEnumerable<(string File, IReadOnlyList<FaceEmotion> Faces, string? Error)> results)
    {
        var doc = results.Select(r => new Dictionary<string, object?>
        {
            ["file"] = r.File,
            ["faces"] = FaceJson.Of(r.Faces),
            ["error"] = r.Error,
        }.Where(kv => kv.Key != "error" || kv.Value != null).ToDictionary(kv => kv.Key, kv => kv.Value));
        return JsonSerializer.Serialize(doc, CliJson.Indented);
    }

    private static string ToJson(List<FileResult> results) => ToJson(results.Select(r => (r.File, r.Faces, r.Error)));

    private static string ToCsv(List<FileResult> results, IReadOnlyList<string> classes)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("file,face,x,y,width,height,emotion,confidence," + string.Join(',', classes) + "\n");
        foreach (var r in results)
        {
            for (var i = 0; i < r.Faces.Count; i++)
            {
                var f = r.Faces[i];
                sb.Append(inv, $"{CsvField(r.File)},{i + 1},{f.Box.X},{f.Box.Y},{f.Box.Width},{f.Box.Height},{f.Emotion},{f.Confidence:F4}");
                foreach (var c in classes) sb.Append(inv, $",{f.Probabilities[c]:F4}");
                sb.Append('\n');
            }
        }
        return sb.ToString();
    }

    private static string CsvField(string value) =>
        value.IndexOfAny([',', '"', '\n']) >= 0 ? $"\"{value.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : value;

    private static void PrintTable(List<FileResult> results, EmotionModel model)
    {
        var table = new Table().Border(TableBorder.Rounded).Title($"expressions ({model.Metadata.Name})")
            .Caption($"[grey]{Markup.Escape(EngineOption.Describe(model))}[/]");
        table.AddColumn("file");
        table.AddColumn(new TableColumn("face").RightAligned());
        table.AddColumn("box (x,y,w,h)");
        table.AddColumn("expression");
        table.AddColumn(new TableColumn("confidence").RightAligned());
        table.AddColumn("runner-up");
        foreach (var r in results)
        {
            if (r.Error != null)
            {
                table.AddRow(Markup.Escape(r.File), "", "", $"[red]error: {Markup.Escape(r.Error)}[/]", "", "");
                continue;
            }
            if (r.Faces.Count == 0)
            {
                table.AddRow(Markup.Escape(r.File), "0", "", "[grey]no face found[/]", "", "");
                continue;
            }
            for (var i = 0; i < r.Faces.Count; i++)
            {
                var f = r.Faces[i];
                var second = f.Probabilities.OrderByDescending(kv => kv.Value).Skip(1).First();
                table.AddRow(i == 0 ? Markup.Escape(r.File) : "", $"{i + 1}", $"{f.Box.X},{f.Box.Y},{f.Box.Width},{f.Box.Height}",
                    $"[bold]{f.Emotion}[/]", $"{f.Confidence:P1}", $"{second.Key} {second.Value:P1}");
            }
        }
        AnsiConsole.Write(table);
    }

    public static Command Video()
    {
        var source = new Argument<string>("source") { Description = "Video file, or camera:N for a webcam (e.g. camera:0)." };
        var model = new Option<string?>("--model", "-m") { Description = "Model package folder (default: the shipped model)." };
        var output = new Option<string?>("--out", "-o") { Description = "Write an annotated copy (.mp4 or .avi)." };
        var csv = new Option<string?>("--csv") { Description = "Write frame,time,face id,box,emotion,probabilities rows." };
        var every = new Option<int>("--every") { Description = "Analyse every Nth frame (others reuse the last result).", DefaultValueFactory = _ => 1 };
        var smooth = new Option<double>("--smooth") { Description = "Temporal smoothing of each face's probabilities, 0 (off) to 0.95.", DefaultValueFactory = _ => 0.6 };
        var maxFrames = new Option<int>("--max-frames") { Description = "Stop after N frames (0 = all; cameras run until Ctrl+C).", DefaultValueFactory = _ => 0 };
        var detection = new Option<string>("--detection")
        {
            Description = "Face detector settings: 'fast' (live video: BlazeFace on the whole frame only, but every tenth frame as a photo is, and faces followed into the next frames by a look around where they were; Haar with scale step 1.1 on frames downscaled to 480 px) or 'accurate' (the photo settings: BlazeFace also looks at the frame at twice and four times the scale, up to its own size, on every frame, for faces under a sixth of it: about 2x slower at 640x480, more on larger frames; Haar 2-3x slower).",
            DefaultValueFactory = _ => "fast",
        };
        detection.AcceptOnlyFromAmong("fast", "accurate");
        var jsonl = new Option<bool>("--jsonl")
        {
            Description = "Write one JSON line per analysed frame to stdout as it is analysed ({\"frame\",\"time_s\",\"faces\":[{\"id\",\"box\",\"emotion\",\"confidence\",\"probabilities\"}]}), for a program reading a live stream; the summary goes to stderr.",
        };
        var show = new Option<bool>("--show") { Description = "Show the annotated frames in a window as they are analysed (needs a graphical display; q or Esc stops)." };
        var engine = EngineOption.Create();
        var detectorKind = DetectorOption.Create();
        var command = new Command("video", "Recognize expressions in a video file or webcam stream, tracking faces across frames; a terminal shows each face's expression and probabilities live.")
        {
            source, model, output, csv, every, smooth, maxFrames, detectorKind, detection, jsonl, show, engine,
        };
        command.SetAction((parse, ct) =>
        {
            var showWindow = parse.GetValue(show);
            if (showWindow) VideoWindow.EnsureDisplay();
            var accurate = parse.GetValue(detection) == "accurate";
            var settings = accurate ? new RecognizerOptions() : RecognizerOptions.Video;
            using var recognizer = EmotionRecognizer.Load(parse.GetValue(model), settings with { DetectorKind = parse.GetValue(detectorKind) });
            EngineOption.Apply(recognizer.Model, parse.GetValue(engine));
            var options = new VideoOptions
            {
                Every = parse.GetValue(every),
                Smoothing = parse.GetValue(smooth),
                OutputPath = parse.GetValue(output),
                CsvPath = parse.GetValue(csv),
                MaxFrames = parse.GetValue(maxFrames),
            };
            var src = parse.GetRequiredValue(source);
            var streamJson = parse.GetValue(jsonl);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            // Opened at the first frame, so a source that cannot be read never flashes an empty window.
            VideoWindow? window = null;
            void OnFrame(VideoFrame frame)
            {
                if (streamJson && frame.Analyzed) VideoJsonLines.Write(Console.Out, frame);
                if (!showWindow) return;
                window ??= new VideoWindow($"fer video: {src}");
                if (!window.Show(frame, annotated: options.OutputPath != null)) stop.Cancel();
            }

            var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            VideoSummary summary;
            try
            {
                summary = ProcessVideo(recognizer, src, options, err, OnFrame, stop.Token);
            }
            finally
            {
                window?.Dispose();
            }
            // With --jsonl stdout carries only the frames' lines.
            var report = streamJson ? err : AnsiConsole.Console;
            report.MarkupLineInterpolated(
                $"{summary.FramesRead} frames ({summary.FramesAnalyzed} analysed), {summary.FaceDetections} face detections, {summary.Tracks} tracked faces; [bold]{summary.FramesPerSecond:F1} FPS[/] achieved (source {summary.SourceFps:F1} FPS); model {recognizer.Model.Metadata.Name}, {EngineOption.Describe(recognizer.Model)}");
            if (options.OutputPath != null) report.MarkupLineInterpolated($"annotated video: [bold]{options.OutputPath}[/]");
            if (options.CsvPath != null) report.MarkupLineInterpolated($"per-frame CSV: [bold]{options.CsvPath}[/]");
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    /// <summary>Runs the video, with the live table on <paramref name="err"/> when it is a terminal.</summary>
    private static VideoSummary ProcessVideo(EmotionRecognizer recognizer, string source, VideoOptions options, IAnsiConsole err,
        Action<VideoFrame> onFrame, CancellationToken cancellationToken)
    {
        if (!err.Profile.Capabilities.Interactive)
        {
            return VideoRecognition.Process(recognizer, source, options, null, cancellationToken, onFrame);
        }
        var view = new VideoLiveView(source, recognizer.Model.ClassNames);
        VideoSummary? summary = null;
        err.Live(view.Render()).Overflow(VerticalOverflow.Ellipsis).Cropping(VerticalOverflowCropping.Bottom).Start(live =>
        {
            int? frameCount = null;
            summary = VideoRecognition.Process(recognizer, source, options, (_, total) => frameCount = total, cancellationToken, frame =>
            {
                onFrame(frame);
                if (view.Update(frame, frameCount)) live.UpdateTarget(view.Render());
            });
            live.UpdateTarget(view.Render());
        });
        return summary!;
    }
}
