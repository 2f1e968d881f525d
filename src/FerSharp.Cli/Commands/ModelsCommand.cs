using System.CommandLine;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;
using FerSharp.Training;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer models</c>: the architectures with their size and cost, and <c>--layers</c> to show each layer.</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var layers = new Option<bool>("--layers") { Description = "Also list every layer with its output shape and parameters." };
        var classes = new Option<int>("--classes") { Description = "Number of output classes.", DefaultValueFactory = _ => 7 };
        var command = new Command("models", "List the architectures: parameters, FLOPs per 48x48 image, description.") { layers, classes };
        command.SetAction(parse =>
        {
            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn("architecture");
            table.AddColumn(new TableColumn("parameters").RightAligned());
            table.AddColumn(new TableColumn("MFLOPs / image").RightAligned());
            table.AddColumn("design");
            var classCount = OptionRules.AtLeast(parse, classes, 2, "classes");
            var details = new List<(string, ModelProfile)>();
            foreach (var arch in ModelRegistry.All)
            {
                using var module = arch.Create(classCount);
                var profile = ModelProfiler.Profile(module);
                table.AddRow(arch.Name, $"{profile.Parameters:N0}", $"{profile.Flops / 1e6:N1}", Markup.Escape(arch.Summary));
                details.Add((arch.Name, profile));
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine("[grey]FLOPs count a multiply-add as 2 (convolutions and linear layers, forward pass).[/]");
            if (parse.GetValue(layers))
            {
                foreach (var (name, profile) in details)
                {
                    var t = new Table().Border(TableBorder.Simple).Title(name);
                    t.AddColumn("layer");
                    t.AddColumn("type");
                    t.AddColumn("output");
                    t.AddColumn(new TableColumn("params").RightAligned());
                    foreach (var layer in profile.Layers)
                    {
                        t.AddRow(layer.Name, layer.Type, string.Join("x", layer.OutputShape), $"{layer.Parameters:N0}");
                    }
                    AnsiConsole.Write(t);
                }
            }
            return CliRunner.ExitOk;
        });
        command.Subcommands.Add(Ship());
        command.Subcommands.Add(Score());
        command.Subcommands.Add(FromCheckpoint());
        command.Subcommands.Add(Average());
        command.Subcommands.Add(Prune());
        command.Subcommands.Add(Quantize());
        command.Subcommands.Add(Export());
        command.Subcommands.Add(Upgrade());
        return command;
    }

    private static Command Upgrade()
    {
        var packages = new Argument<string[]>("packages") { Description = "Model packages to rewrite in the current format (e.g. models/*/).", Arity = ArgumentArity.OneOrMore };
        var command = new Command("upgrade", $"Rewrite packages in place in format {ModelMetadata.CurrentFormatVersion}: the network as ONNX (model.onnx, the weights at their stored precision), which recognition runs without libtorch; weights.bin goes. Packages already current are left alone.") { packages };
        command.SetAction(parse =>
        {
            foreach (var path in parse.GetRequiredValue(packages))
            {
                var metadata = ModelPackage.ReadMetadata(path, out var folder, out _);
                if (metadata.HasOnnxNetwork && metadata.FormatVersion == ModelMetadata.CurrentFormatVersion)
                {
                    AnsiConsole.MarkupLineInterpolated($"{folder}: already format {metadata.FormatVersion}");
                    continue;
                }
                using var model = EmotionModel.Load(folder);
                try
                {
                    model.Save(folder, float16: metadata.WeightsDtype == "float16");
                }
                catch (NotSupportedException ex)
                {
                    throw new UserFacingException($"{folder}: {ex.Message}");
                }
                var size = new FileInfo(Path.Combine(folder, ModelMetadata.OnnxFileName)).Length;
                AnsiConsole.MarkupLineInterpolated($"{folder}: format {metadata.FormatVersion} -> {ModelMetadata.CurrentFormatVersion}, {ModelMetadata.OnnxFileName} {size / 1e6:F1} MB ({metadata.WeightsDtype})");
            }
            return CliRunner.ExitOk;
        });
        return command;
    }

    private static Command Export()
    {
        var source = new Argument<string>("package") { Description = "Model package to export (e.g. models/fer2013-realtime)." };
        var target = new Argument<string>("output") { Description = "ONNX file to write (e.g. fer2013-realtime.onnx)." };
        var command = new Command("export", "Write a model package's network as a standalone ONNX file (opset 13, float32 weights): input 'faces' float [N,1,48,48] grey pixels 0..255 (the normalization is inside the graph), output 'logits' [N,classes]. Softmax and flip averaging are left to the caller.") { source, target };
        command.SetAction(parse =>
        {
            var output = parse.GetRequiredValue(target);
            if (Directory.Exists(output)) throw new ArgumentException($"{output}: is a folder; give the .onnx file to write");
            using var model = EmotionModel.Load(parse.GetRequiredValue(source));
            byte[] onnx;
            try
            {
                onnx = OnnxExport.Export(model);
            }
            catch (NotSupportedException ex)
            {
                throw new UserFacingException($"{parse.GetRequiredValue(source)}: {ex.Message}");
            }
            AtomicFile.WriteAllBytes(output, onnx);
            var m = model.Metadata;
            AnsiConsole.MarkupLineInterpolated($"wrote {output} ({onnx.Length / 1e6:F1} MB, {m.Architecture}, classes {string.Join(",", m.ClassNames)})");
            AnsiConsole.MarkupLineInterpolated($"input '{OnnxExport.InputName}': float [[N,1,{m.InputSize},{m.InputSize}]] grey pixels 0..255 (the package's normalization, {m.Normalization}, is inside the graph); output '{OnnxExport.OutputName}': class scores [[N,{m.ClassNames.Count}]] before softmax");
            if (m.FlipAveraging)
            {
                AnsiConsole.MarkupLine("this package averages each face with its mirror: do the same with the exported graph for its accuracy");
            }
            return CliRunner.ExitOk;
        });
        return command;
    }

    private static Command Average()
    {
        var sources = new Argument<string[]>("packages") { Description = "Two or more model packages of one architecture, e.g. the ends of successive cosine cycles.", Arity = new ArgumentArity(2, 100) };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write the averaged package to (float32; ship it with 'fer models ship').", Required = true };
        var name = new Option<string?>("--name") { Description = "Name recorded in model.json (default: the output folder's name)." };
        var recompute = new Option<bool>("--recompute-bn") { Description = "Recompute batch-norm statistics over the faces the members trained on (one pass, unaugmented) instead of averaging the members' statistics." };
        var data = new Option<string?>("--data", "-d") { Description = "FER2013 data for --recompute-bn. Default: ../shared/data/fer2013/fer2013.csv.gz when present." };
        var command = new Command("average", "Average the weights of packages into one network of the same size and speed (stochastic weight averaging); score it with 'fer evaluate'.") { sources, output, name, recompute, data };
        command.SetAction((parse, ct) =>
        {
            var destination = OptionRules.FolderToWrite(parse.GetRequiredValue(output), "--out")!;
            using var members = new ModelSet(parse.GetRequiredValue(sources));
            using var averaged = WeightAveraging.Average(members.Loaded, parse.GetValue(name) ?? Path.GetFileName(Path.GetFullPath(destination)));
            if (parse.GetValue(recompute))
            {
                var dataPath = parse.GetValue(data) ?? Fer2013Dataset.FindSharedData()
                    ?? throw new UserFacingException("--recompute-bn needs FER2013 data: pass --data");
                var splits = Enum.GetValues<DataSplit>().Where(averaged.Metadata.TrainedOn).ToArray();
                var faces = Fer2013Dataset.Load(dataPath, new DatasetLoadOptions { Splits = splits });
                var layers = AnsiConsole.Status().Start($"recomputing batch-norm statistics on {faces.Count:N0} faces…", _ => WeightAveraging.RecomputeBatchNorm(averaged, faces, cancellationToken: ct));
                AnsiConsole.MarkupLineInterpolated($"recomputed {layers} batch-norm layers on {faces.Count:N0} faces ({string.Join(" + ", splits)})");
            }
            averaged.Save(destination);
            AnsiConsole.MarkupLineInterpolated($"wrote {destination}: {averaged.Metadata.Architecture}, the average of {string.Join(", ", members.Loaded.Select(m => m.Metadata.Name))}");
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    private static Command Prune()
    {
        var source = new Argument<string>("package") { Description = "Trained package to narrow, e.g. models/fer2013-realtime (fast-cnn)." };
        var arch = new Option<string>("--arch", "-a") { Description = "Narrower architecture of the same layout, e.g. fast-cnn-slim (see 'fer models').", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write the narrowed package to (float32): the start of 'fer train --init-from'.", Required = true };
        var name = new Option<string?>("--name") { Description = "Name recorded in model.json (default: the output folder's name)." };
        var command = new Command("prune", "Narrow a trained network into a faster architecture of the same layout, keeping each stage's channels of largest batch-norm scale; fine-tune the result with 'fer train --init-from' (ideally distilled from the original) before using it.") { source, arch, output, name };
        command.SetAction(parse =>
        {
            var architecture = parse.GetRequiredValue(arch);
            if (!ModelRegistry.Contains(architecture))
            {
                throw new UserFacingException($"--arch: unknown architecture '{architecture}'; known: {string.Join(", ", ModelRegistry.All.Select(a => a.Name))}");
            }
            var destination = OptionRules.FolderToWrite(parse.GetRequiredValue(output), "--out")!;
            using var model = EmotionModel.Load(parse.GetRequiredValue(source));
            EmotionModel narrowed;
            try
            {
                narrowed = ChannelPruning.Prune(model, architecture, parse.GetValue(name) ?? Path.GetFileName(Path.GetFullPath(destination)));
            }
            catch (ArgumentException e)
            {
                throw new UserFacingException($"--arch {architecture}: {e.Message}");
            }
            using (narrowed)
            {
                narrowed.Save(destination);
                AnsiConsole.MarkupLineInterpolated($"wrote {destination}: {narrowed.Metadata.Architecture}, {narrowed.Metadata.Parameters:N0} parameters (from {model.Metadata.Parameters:N0}); fine-tune it before use");
            }
            return CliRunner.ExitOk;
        });
        return command;
    }

    private static Command Quantize()
    {
        var package = new Argument<string>("package") { Description = "Model package to give an int8 network, in place (e.g. models/fer2013-realtime): model.int8.onnx beside model.onnx, recorded in model.json." };
        var data = new Option<string?>("--data", "-d") { Description = "FER2013 CSV: the calibration faces come from its Training rows, the test figures from PublicTest and PrivateTest. Default: ../shared/data/fer2013/fer2013.csv.gz." };
        var count = new Option<int>("--calibration-faces") { Description = "Training faces (and their mirror images) the activation ranges are measured on, evenly spread over the split.", DefaultValueFactory = _ => 1000 };
        var scenes = ScenesOption();
        var command = new Command("quantize", "Add an int8 copy of a package's network (static quantization: int8 convolutions, ranges measured on training faces), which ONNX Runtime runs by default, about twice as fast on CPUs with integer dot-product instructions; then score both networks and rewrite the model card. '--precision float' keeps the float network.") { package, data, count, scenes };
        command.SetAction((parse, ct) =>
        {
            var path = Inference.ModelCatalog.Resolve(parse.GetRequiredValue(package));
            var calibration = parse.GetValue(count);
            if (calibration is < 1 or > 28_709) throw new UserFacingException($"--calibration-faces: must be from 1 to 28,709 (FER2013's Training rows), got {calibration}");
            var csv = parse.GetValue(data) ?? Fer2013Dataset.FindSharedData()
                ?? throw new UserFacingException("--data: no FER2013 CSV found beside the project (../shared/data/fer2013/fer2013.csv.gz); pass one");
            if (!File.Exists(csv)) throw new UserFacingException($"--data: {csv}: no such file");
            ModelPackage.ReadMetadata(path, out var folder, out _);
            var training = Fer2013Dataset.Load(csv, new DatasetLoadOptions { Splits = [DataSplit.Training] }, ct);
            var step = Math.Max(1, training.Count / calibration);
            var faces = Enumerable.Range(0, Math.Min(calibration, training.Count)).Select(i => training.Face(i * step).ToArray()).ToList();
            AnsiConsole.MarkupLineInterpolated($"[grey]measuring activation ranges on {faces.Count:N0} Training faces and their mirror images…[/]");
            try
            {
                Int8Quantization.AddTo(folder, faces, $"{faces.Count:N0} Training faces of {Path.GetFileName(csv)} (every {step}th) and their mirror images", ct);
            }
            catch (Exception e) when (e is NotSupportedException or InvalidDataException)
            {
                throw new UserFacingException(e.Message);
            }
            var written = new FileInfo(Path.Combine(folder, ModelMetadata.Int8FileName)).Length;
            AnsiConsole.MarkupLineInterpolated($"wrote {Path.Combine(folder, ModelMetadata.Int8FileName)} ({written / 1e6:F1} MB)");
            return Task.FromResult(ScoreAndReport(folder, csv, parse.GetValue(scenes), ct));
        });
        return command;
    }

    private static Command Ship()
    {
        var source = new Argument<string>("package") { Description = "Model package to copy (e.g. runs/<name>/model)." };
        var target = new Argument<string>("destination") { Description = "Destination folder (e.g. models/fer2013-seed)." };
        var name = new Option<string?>("--name") { Description = "Name recorded in model.json (default: the destination folder's name)." };
        var fp32 = new Option<bool>("--float32") { Description = "Keep float32 weights (default stores float16: half the size)." };
        var testData = new Option<string?>("--test-data") { Description = "FER2013 CSV to score the shipped copy on (PublicTest/PrivateTest, one view and mirrored; the image-folder release and FER+ votes beside it too; recorded in model.json and MODEL_CARD.md). Default: ../shared/data/fer2013/fer2013.csv.gz when present." };
        var scenes = ScenesOption();
        var noTest = new Option<bool>("--no-test") { Description = "Do not score the shipped copy." };
        var history = new Option<string?>("--history") { Description = "A sentence or two for the model card's recipe: how the package came about where its command alone does not say (earlier runs, a pruned start). Without it the source package's is kept." };
        var flip = new Option<bool?>("--flip-averaging") { Description = "The package's predictions average each face and its mirror image (one batch of two; decide on validation accuracy, e.g. 'fer evaluate --split PublicTest --tta flip'). '--flip-averaging false' switches it off; without the option the source package's setting is kept." };
        var command = new Command("ship", "Copy a model package for shipping: float16 weights, new name, checksum, test-set accuracy.") { source, target, name, fp32, flip, history, testData, noTest, scenes };
        command.SetAction((parse, ct) =>
        {
            var destination = OptionRules.FolderToWrite(parse.GetRequiredValue(target), "destination")!;
            using var model = EmotionModel.Load(parse.GetRequiredValue(source));
            model.UpdateMetadata(m => m with
            {
                Name = parse.GetValue(name) ?? Path.GetFileName(Path.GetFullPath(destination)),
                FlipAveraging = parse.GetValue(flip) ?? m.FlipAveraging,
                History = parse.GetValue(history) ?? m.History,
            });
            model.Save(destination, float16: !parse.GetValue(fp32));
            var size = new FileInfo(Path.Combine(destination, model.Metadata.WeightsFile)).Length;
            AnsiConsole.MarkupLineInterpolated($"wrote {destination} ({model.Metadata.WeightsDtype}, {size / 1e6:F1} MB)");
            if (parse.GetValue(noTest)) return Task.FromResult(CliRunner.ExitOk);
            return Task.FromResult(ScoreAndReport(destination, parse.GetValue(testData), parse.GetValue(scenes), ct));
        });
        return command;
    }

    private static Command Score()
    {
        var package = new Argument<string>("package") { Description = "Model package to score in place (e.g. models/fer2013-seed): its model.json figures and MODEL_CARD.md are rewritten, its weights are not touched." };
        var testData = new Option<string?>("--test-data") { Description = "FER2013 CSV; the image-folder release and FER+ votes are taken from beside it. Default: ../shared/data/fer2013/fer2013.csv.gz." };
        var scenes = ScenesOption();
        var command = new Command("score", "Score a package on the original FER2013 pixels (PublicTest, PrivateTest, one view and mirrored), the image-folder release, FER+ for 8-class packages, and one face's latency; record the figures and write its MODEL_CARD.md.") { package, testData, scenes };
        command.SetAction((parse, ct) => Task.FromResult(ScoreAndReport(parse.GetRequiredValue(package), parse.GetValue(testData), parse.GetValue(scenes), ct)));
        return command;
    }

    private static Command FromCheckpoint()
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "A run's checkpoint of a finished epoch, e.g. runs/<name>/checkpoints/last.ckpt." };
        var output = new Argument<string>("package") { Description = "Folder to write the package to (float32; ship it with 'fer models ship')." };
        var command = new Command("from-checkpoint", "Write the package of a checkpoint's epoch (its EMA weights when the run keeps them): the last epoch of a run whose best-epoch package is not wanted, such as a fine-tune validated on faces it had trained on.") { checkpoint, output };
        command.SetAction(parse =>
        {
            var destination = OptionRules.FolderToWrite(parse.GetRequiredValue(output), "package")!;
            if (Directory.Exists(destination) && Directory.EnumerateFileSystemEntries(destination).Any()) throw new UserFacingException($"{destination}: folder is not empty; choose a new one");
            using var model = Training.Trainer.PackageFromCheckpoint(parse.GetRequiredValue(checkpoint), Path.GetFileName(Path.GetFullPath(destination)));
            model.Save(destination);
            AnsiConsole.MarkupLineInterpolated($"wrote {destination}: epoch {model.Metadata.Epochs} of {model.Metadata.TrainOptions()?.Epochs}");
            return CliRunner.ExitOk;
        });
        return command;
    }

    private static Option<string?> ScenesOption() => new("--scenes")
    {
        Description = "Also score a folder of labelled photos made by 'fer data scenes' through detect, crop and classify, and say the result in the model card.",
    };

    private static int ScoreAndReport(string package, string? testData, string? scenes, CancellationToken ct)
    {
        package = Inference.ModelCatalog.Resolve(package);
        var data = TestData.Beside(testData) with { Scenes = scenes };
        if (data.Csv is null)
        {
            AnsiConsole.MarkupLine("[yellow]no FER2013 data found (pass --test-data): test-set accuracy not recorded[/]");
            return CliRunner.ExitOk;
        }
        var metrics = PackageScoring.Score(package, data, line => AnsiConsole.MarkupLineInterpolated($"[grey]{line}[/]"), ct);
        var table = new Table().Border(TableBorder.Rounded).AddColumn("metric").AddColumn("value");
        foreach (var (key, value) in metrics.Where(p => !p.Key.Contains("_recall_", StringComparison.Ordinal)))
        {
            table.AddRow(key, key.Contains("latency", StringComparison.Ordinal) ? $"{value:F2} ms" : key.Contains("f1", StringComparison.Ordinal) ? $"{value:F3}" : $"{value:P2}");
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"wrote {Path.Combine(package, ModelCard.FileName)}");
        using var shipped = EmotionModel.Load(package);
        if (data.Csv is { } csv)
        {
            var faces = Fer2013Dataset.Load(csv, new DatasetLoadOptions { Splits = [DataSplit.PublicTest, DataSplit.PrivateTest] }, ct);
            foreach (var note in Evaluator.TrainingDataNotes([shipped], faces))
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]{note}[/]");
            }
        }
        return CliRunner.ExitOk;
    }
}
