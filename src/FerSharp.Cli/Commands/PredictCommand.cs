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

    public static Command Create()
    {
        var inputs = new Argument<string[]>("files") { Description = "Images or folders (searched recursively); - reads one image from standard input.", Arity = ArgumentArity.OneOrMore };
        var model = new Option<string?>("--model", "-m") { Description = "Model package folder (default: the shipped model)." };
        var format = new Option<string>("--format", "-f") { Description = "Output: table (for people), csv, json (an array) or jsonl (one line per file). csv, json and jsonl are written as each file finishes; every input gets a row, with 'found' saying how each face was found and 'error' why a file failed.", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json", "jsonl", "csv");
        var output = new Option<string?>("--out", "-o") { Description = "Write the csv, json or jsonl rows to this file instead of standard output (a new file, unless --resume)." };
        var shard = new Option<string?>("--shard") { Description = "Take only share i of N of the inputs, e.g. 0/4: chosen by a hash of each path, the same on every machine (for a batch split across workers, e.g. a Kubernetes Indexed Job's $JOB_COMPLETION_INDEX/N)." };
        var resume = new Option<bool>("--resume") { Description = "Continue the --out file of an interrupted run: files already in it are skipped and new rows appended (csv or jsonl)." };
        var annotate = new Option<string?>("--annotate") { Description = "Write copies with boxes, labels and probability bars into this folder." };
        var detect = new Option<FaceDetectionMode>("--detect") { Description = "Auto (run the face detector, except on images of at most 96x96, taken whole as a face crop), Always, or Never (each image is one face crop).", DefaultValueFactory = _ => FaceDetectionMode.Auto };
        var noDetect = new Option<bool>("--no-detect") { Description = "Same as --detect never." };
        var recognition = new RecognitionOptions();
        var engine = EngineOption.Create();
        var precision = EngineOption.CreatePrecision();
        var threads = ThreadsOption.Create();
        var command = new Command("predict", "Find every face in photos and say its expression with probabilities.") { inputs, model, format, output, shard, resume, annotate, detect, noDetect };
        recognition.AddTo(command);
        command.Options.Add(engine);
        command.Options.Add(precision);
        command.Options.Add(threads);
        command.SetAction((parse, ct) =>
        {
            var fmt = parse.GetValue(format)!;
            var outPath = parse.GetValue(output);
            var resuming = parse.GetValue(resume);
            if (outPath is not null && fmt == "table") throw new UserFacingException("--out writes csv, json or jsonl rows: pass --format csv, json or jsonl");
            if (resuming && (outPath is null || fmt is not ("csv" or "jsonl"))) throw new UserFacingException("--resume continues an --out file of csv or jsonl rows: pass --out <file> and --format csv or jsonl");
            if (outPath is not null && Directory.Exists(outPath)) throw new UserFacingException($"--out: {outPath} is a folder; give the file to write");
            if (outPath is not null && File.Exists(outPath) && !resuming) throw new UserFacingException($"--out: {outPath} already exists; pass --resume to continue it, or choose a new file");
            var share = parse.GetValue(shard) is { } text ? Shard.Parse(text) : Shard.All;
            var files = ExpandInputs(parse.GetRequiredValue(inputs)).Where(share.Takes).ToList();
            var done = resuming ? PredictionOutput.FilesDone(outPath!, fmt) : [];
            var skipped = files.RemoveAll(f => done.Contains(DisplayName(f)));
            if (skipped > 0) Console.Error.WriteLine($"fer: --resume: {skipped} of {skipped + files.Count} files are already in {outPath}");
            var annotateDir = OptionRules.FolderToWrite(parse.GetValue(annotate), "--annotate");
            var mode = parse.GetValue(noDetect) ? FaceDetectionMode.Never : parse.GetValue(detect);
            var settings = recognition.Read(parse) with { Detection = mode, ThreadsPerCall = ThreadsOption.Read(parse, threads) };
            settings.Validate(); // now, not after the model's load
            // Inputs that cannot be read are reported at once, without waiting for a model that has nothing to do.
            var missing = files.Where(f => f != StandardInput && !File.Exists(f)).ToList();
            if (missing.Count == files.Count && files.Count > 0 && fmt == "table")
            {
                foreach (var file in missing) Console.Error.WriteLine($"fer: error: {file}: no such file");
                return Task.FromResult(CliRunner.ExitFailure);
            }
            using var recognizer = EngineOption.LoadRecognizer(parse.GetValue(model), settings, parse.GetValue(engine), parse.GetValue(precision));
            if (annotateDir != null) Directory.CreateDirectory(annotateDir);
            var results = new List<FileResult>(files.Count);
            var progressConsole = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            var rows = fmt == "table" ? null
                : PredictionOutput.Open(outPath, resuming, fmt, recognizer.Model.ClassNames, recognizer.Model.Metadata.Name, recognizer.Model.Engine.ToString());
            var cancelled = false;
            void ProcessAll(Action? tick)
            {
                foreach (var file in files)
                {
                    if (ct.IsCancellationRequested)
                    {
                        cancelled = true;
                        return;
                    }
                    var result = ProcessFile(recognizer, file, annotateDir);
                    rows?.Write(result);
                    results.Add(result);
                    tick?.Invoke();
                }
            }
            try
            {
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
            }
            finally
            {
                rows?.Dispose(); // a JSON array is closed, so what was finished parses, also after Ctrl+C
            }
            if (fmt == "table")
            {
                PrintTable(results, recognizer.Model);
            }
            else
            {
                foreach (var failed in results.Where(r => r.Error != null))
                {
                    Console.Error.WriteLine($"fer: error: {failed.File}: {failed.Error}");
                }
            }
            if (annotateDir != null && fmt == "table")
            {
                AnsiConsole.MarkupLineInterpolated($"annotated copies in [bold]{annotateDir}[/]");
            }
            if (cancelled)
            {
                Console.Error.WriteLine($"fer: cancelled after {results.Count} of {files.Count} files; {(outPath is null ? "the output" : outPath)} holds the finished ones{(outPath is not null && fmt != "json" ? " (continue with --resume)" : "")}");
                return Task.FromResult(CliRunner.ExitCancelled);
            }
            return Task.FromResult(results.Any(r => r.Error != null) ? CliRunner.ExitFailure : CliRunner.ExitOk);
        });
        return command;
    }

    /// <summary>How a file is named in every output (standard input as "(stdin)").</summary>
    private static string DisplayName(string file) => file == StandardInput ? "(stdin)" : file;

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
        var name = DisplayName(file);
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

    private static void PrintTable(List<FileResult> results, IFaceClassifier model)
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
                var how = f.Finding == FaceFinding.Detected ? "" : $" [grey]({FaceJson.FoundName(f.Finding)})[/]";
                table.AddRow(i == 0 ? Markup.Escape(r.File) : "", $"{i + 1}", $"{f.Box.X},{f.Box.Y},{f.Box.Width},{f.Box.Height}",
                    $"[bold]{f.Emotion}[/]{how}", $"{f.Confidence:P1}", $"{second.Key} {second.Value:P1}");
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
        var precision = EngineOption.CreatePrecision();
        var detectorKind = DetectorOption.Create();
        var threads = ThreadsOption.Create();
        var command = new Command("video", "Recognize expressions in a video file or webcam stream, tracking faces across frames; a terminal shows each face's expression and probabilities live.")
        {
            source, model, output, csv, every, smooth, maxFrames, detectorKind, detection, jsonl, show, engine, precision, threads,
        };
        command.SetAction((parse, ct) =>
        {
            var showWindow = parse.GetValue(show);
            if (showWindow) VideoWindow.EnsureDisplay();
            var accurate = parse.GetValue(detection) == "accurate";
            var settings = (accurate ? new RecognizerOptions() : RecognizerOptions.Video) with { ThreadsPerCall = ThreadsOption.Read(parse, threads) };
            using var recognizer = EngineOption.LoadRecognizer(parse.GetValue(model), settings with { DetectorKind = parse.GetValue(detectorKind) }, parse.GetValue(engine), parse.GetValue(precision));
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
                $"{summary.FramesRead} frames ({summary.FramesAnalyzed} analysed), {summary.FaceDetections} face detections, {summary.Tracks} tracked faces; [bold]{summary.FramesPerSecond:F1} FPS[/] achieved after the first frame (which took {summary.FirstFrameSeconds:F2} s with the warm-up; source {summary.SourceFps:F1} FPS); model {recognizer.Model.Metadata.Name}, {EngineOption.Describe(recognizer.Model)}");
            if (options.OutputPath != null) report.MarkupLineInterpolated($"annotated video: [bold]{options.OutputPath}[/]");
            if (options.CsvPath != null) report.MarkupLineInterpolated($"per-frame CSV: [bold]{options.CsvPath}[/]");
            // Ctrl+C ends the video with the frames so far written, and says it was interrupted (q in the window is a normal end).
            return Task.FromResult(ct.IsCancellationRequested ? CliRunner.ExitCancelled : CliRunner.ExitOk);
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
