using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;

using FerSharp.Data;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer data ...</c>: inspect and convert datasets.</summary>
internal static class DataCommands
{
    public static Command Create()
    {
        var data = new Command("data", "Inspect and convert FER2013 / FER+ datasets.");
        data.Subcommands.Add(Stats());
        data.Subcommands.Add(ExportImages());
        data.Subcommands.Add(PreviewAugment());
        data.Subcommands.Add(Scenes());
        data.Subcommands.Add(AverageFacesCommand());
        return data;
    }

    private static Command Stats()
    {
        var path = new Argument<string>("path") { Description = "fer2013.csv(.gz), an image folder (<split>/<class>/*.png) or a tar(.gz) of one." };
        var json = new Option<bool>("--json") { Description = "Print the counts as JSON." };
        var options = new DatasetOptions();
        var command = new Command("stats", "Count faces per split and class.") { path, json };
        options.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var watch = Stopwatch.StartNew();
            var dataset = options.Load(parse, parse.GetRequiredValue(path), ct);
            watch.Stop();
            var counts = dataset.CountsBySplitAndClass();
            if (parse.GetValue(json))
            {
                var splits = DataSplits.All.ToDictionary(s => s.ToString(), s =>
                    dataset.ClassNames.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => counts[(int)s, x.i]));
                var doc = new
                {
                    path = parse.GetRequiredValue(path),
                    count = dataset.Count,
                    classes = dataset.ClassNames,
                    splits,
                    class_totals = dataset.ClassNames.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => dataset.CountsByClass()[x.i]),
                    skipped = dataset.Report.Skipped,
                    notes = dataset.Report.Notes,
                    load_seconds = Math.Round(watch.Elapsed.TotalSeconds, 3),
                };
                Console.WriteLine(JsonSerializer.Serialize(doc, CliJson.Indented));
            }
            else
            {
                AnsiConsole.Write(StatsTable(dataset, counts));
                AnsiConsole.MarkupLine($"[grey]{dataset.Count:N0} faces loaded in {watch.Elapsed.TotalSeconds:F1} s[/]");
                PrintReport(dataset.Report);
            }
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    internal static Table StatsTable(FaceDataset dataset, int[,] counts)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("Faces per split and class");
        table.AddColumn("split");
        foreach (var name in dataset.ClassNames) table.AddColumn(new TableColumn(name).RightAligned());
        table.AddColumn(new TableColumn("[bold]total[/]").RightAligned());
        foreach (var split in DataSplits.All)
        {
            var row = new List<string> { split.ToString() };
            var total = 0;
            for (var c = 0; c < dataset.ClassCount; c++)
            {
                row.Add($"{counts[(int)split, c]:N0}");
                total += counts[(int)split, c];
            }
            row.Add($"[bold]{total:N0}[/]");
            table.AddRow(row.ToArray());
        }
        var totals = dataset.CountsByClass();
        table.AddRow([.. new[] { "[bold]total[/]" }.Concat(totals.Select(t => $"[bold]{t:N0}[/]")), $"[bold]{dataset.Count:N0}[/]"]);
        return table;
    }

    internal static void PrintReport(DatasetLoadReport report)
    {
        foreach (var note in report.Notes)
        {
            AnsiConsole.MarkupLineInterpolated($"[grey]{note}[/]");
        }
        if (report.Skipped.Count > 0)
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]skipped {report.Skipped.Count} bad row(s)/file(s):[/]");
            foreach (var line in report.Skipped.Take(20))
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]  {line}[/]");
            }
            if (report.Skipped.Count > 20)
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]  (and {report.Skipped.Count - 20} more)[/]");
            }
        }
    }

    private static Command PreviewAugment()
    {
        var path = new Argument<string>("data") { Description = "fer2013.csv(.gz), image folder or tar(.gz)." };
        var output = new Option<string>("--out", "-o") { Description = "PNG to write.", DefaultValueFactory = _ => "augment-preview.png" };
        var augment = new Option<string>("--augment") { Description = "Augmentation to show, as for 'fer train --augment'.", DefaultValueFactory = _ => Training.AugmentOptions.Seed.ToString() };
        var rows = new Option<int>("--rows") { Description = "Faces (rows) to show.", DefaultValueFactory = _ => 6 };
        var seed = new Option<long>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1 };
        var options = new DatasetOptions();
        var command = new Command("preview-augment", "Draw a grid of faces and augmented versions of them (PNG).") { path, output, augment, rows, seed };
        options.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var rowCount = OptionRules.Within(parse, rows, 1, 100, "rows");
            var augmentOptions = Training.AugmentOptions.Parse(parse.GetValue(augment)!);
            var dataset = options.Load(parse, parse.GetRequiredValue(path), ct);
            var png = Training.AugmentationPreview.Render(dataset, augmentOptions, rowCount, seed: parse.GetValue(seed));
            AtomicFile.WriteAllBytes(parse.GetValue(output)!, png);
            AnsiConsole.MarkupLineInterpolated($"wrote {parse.GetValue(output)} ({augmentOptions})");
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    private static Command ExportImages()
    {
        var csv = new Argument<string>("csv") { Description = "fer2013.csv or fer2013.csv.gz." };
        var outDir = new Argument<string>("outdir") { Description = "Folder to create: <outdir>/train/<class>/Training_<n>.png, <outdir>/test/<class>/PublicTest_<n>.png ..." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Allow writing into a folder that already has files." };
        var options = new DatasetOptions();
        var command = new Command("export-images", "Write a FER2013 CSV out as the image-folder layout (PNG).") { csv, outDir, overwrite };
        options.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var target = OptionRules.FolderToWrite(parse.GetRequiredValue(outDir), "outdir")!;
            if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any() && !parse.GetValue(overwrite))
            {
                throw new UserFacingException($"{target}: folder is not empty (pass --overwrite to write into it)");
            }
            var dataset = options.Load(parse, parse.GetRequiredValue(csv), ct);
            var written = 0;
            AnsiConsole.Progress().AutoClear(false).HideCompleted(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn()).Start(ctx =>
            {
                var task = ctx.AddTask("exporting", maxValue: dataset.Count);
                written = DatasetExporter.ExportImages(dataset, target, ct, () => task.Increment(1));
            });
            AnsiConsole.MarkupLineInterpolated($"wrote {written:N0} PNG files under {target}");
            PrintReport(dataset.Report);
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    private static Command Scenes()
    {
        var source = new Argument<string>("data") { Description = "fer2013.csv(.gz), image folder or tar(.gz) whose faces are used." };
        var outDir = new Argument<string>("outdir") { Description = "Folder to create: <outdir>/<class>/<n>-scene.jpg and <n>-tightcrop.jpg, for 'fer evaluate --data <outdir> --detect'. FER2013 faces: never commit it." };
        var split = new Option<string>("--split") { Description = "Split whose faces are used.", DefaultValueFactory = _ => "PrivateTest" };
        var count = new Option<int>("--count") { Description = "Photos to write (one per face, from the first).", DefaultValueFactory = _ => 1000 };
        var seed = new Option<int>("--seed") { Description = "Random seed of sizes, angles, light and JPEG quality.", DefaultValueFactory = _ => 1 };
        var options = new DatasetOptions();
        var command = new Command("scenes", "Write labelled test photos made from dataset faces: pasted into 640x480 scenes at 80-220 px, turned up to 15 degrees, or alone as tight crops of 120-256 px; under changed light (gamma, contrast, brightness) and JPEG-compressed.") { source, outDir, split, count, seed };
        options.AddTo(command, withSplit: false);
        command.SetAction((parse, ct) =>
        {
            var target = OptionRules.FolderToWrite(parse.GetRequiredValue(outDir), "outdir")!;
            if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            {
                throw new UserFacingException($"{target}: folder is not empty; choose a new one");
            }
            var photos = parse.GetValue(count);
            if (photos < 1) throw new UserFacingException($"--count: expected a positive number of photos, got {photos}");
            var chosen = DataSplits.Parse(parse.GetValue(split)!);
            var dataset = options.Load(parse, parse.GetRequiredValue(source), ct, [chosen]).Subset(chosen);
            var written = Evaluation.LabelledScenes.Write(dataset, target, photos, parse.GetValue(seed), cancellationToken: ct);
            AnsiConsole.MarkupLineInterpolated($"wrote {written:N0} labelled photos under {target}; score them with: fer evaluate --data {target} --detect");
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    private static Command AverageFacesCommand()
    {
        var source = new Argument<string>("data") { Description = "fer2013.csv(.gz), image folder or tar(.gz) whose faces are averaged." };
        var outDir = new Argument<string>("outdir") { Description = "Folder to create: <outdir>/<class>/average.png (48x48 grey, contrast stretched) and <outdir>/scene.png, the averages side by side in one photo." };
        var split = new Option<string>("--split") { Description = "Split whose faces are averaged.", DefaultValueFactory = _ => "Training" };
        var classes = new Option<string?>("--classes") { Description = "Comma-separated classes to place in scene.png, in this order (default: every class averaged)." };
        var side = new Option<int>("--side") { Description = "Side in pixels of each face in scene.png (48 to 1024).", DefaultValueFactory = _ => 200 };
        var options = new DatasetOptions();
        var command = new Command("average-faces", $"Write each class's mean face (every pixel averaged over its faces; classes with fewer than {AverageFaces.MinimumFaces} faces are left out) and a scene of them for 'fer predict'. An average of hundreds of faces shows none of them, so unlike the dataset's own faces it may be shown.") { source, outDir, split, classes, side };
        options.AddTo(command, withSplit: false);
        command.SetAction((parse, ct) =>
        {
            var target = OptionRules.FolderToWrite(parse.GetRequiredValue(outDir), "outdir")!;
            if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            {
                throw new UserFacingException($"{target}: folder is not empty; choose a new one");
            }
            var faceSide = OptionRules.Within(parse, side, 48, 1024, "pixels");
            var chosen = DataSplits.Parse(parse.GetValue(split)!);
            var dataset = options.Load(parse, parse.GetRequiredValue(source), ct, [chosen]).Subset(chosen);
            var averages = AverageFaces.Compute(dataset, cancellationToken: ct);
            var placed = averages;
            if (parse.GetValue(classes) is { } list)
            {
                placed = [.. list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(name =>
                    averages.FirstOrDefault(a => string.Equals(a.ClassName, name, StringComparison.OrdinalIgnoreCase))
                    ?? throw new UserFacingException($"--classes: no average face of '{name}'; averaged: {string.Join(", ", averages.Select(a => a.ClassName))}"))];
            }
            if (placed.Count == 0)
            {
                throw new UserFacingException($"{parse.GetRequiredValue(source)}: no class of the {chosen} split has {AverageFaces.MinimumFaces} faces to average");
            }
            foreach (var average in averages)
            {
                var folder = Path.Combine(target, average.ClassName);
                Directory.CreateDirectory(folder);
                using var grey = OpenCvSharp.Mat.FromPixelData(FaceDataset.ImageSize, FaceDataset.ImageSize, OpenCvSharp.MatType.CV_8UC1, average.Pixels);
                AtomicFile.WriteAllBytes(Path.Combine(folder, "average.png"), grey.ImEncode(".png"));
            }
            using (var scene = AverageFaces.Scene(placed, faceSide))
            {
                AtomicFile.WriteAllBytes(Path.Combine(target, "scene.png"), scene.ImEncode(".png"));
            }
            foreach (var average in averages)
            {
                AnsiConsole.MarkupLineInterpolated($"{average.ClassName}: the average of {average.FaceCount:N0} faces");
            }
            var left = dataset.ClassNames.Except(averages.Select(a => a.ClassName)).ToList();
            if (left.Count > 0) AnsiConsole.MarkupLineInterpolated($"[yellow]left out (fewer than {AverageFaces.MinimumFaces} faces): {string.Join(", ", left)}[/]");
            AnsiConsole.MarkupLineInterpolated($"wrote {averages.Count} average faces and scene.png ({string.Join(", ", placed.Select(a => a.ClassName))}) under {target}");
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }
}
