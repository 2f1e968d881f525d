using System.IO.Compression;

using FerSharp.Data;

using OpenCvSharp;

namespace FerSharp.Tests;

public class Fer2013CsvTests
{
    private const string Header = "emotion,pixels,Usage";

    private static string WriteCsv(TempDir dir, string name, params string[] lines)
    {
        var path = dir.File(name);
        File.WriteAllText(path, string.Join('\n', lines) + "\n");
        return path;
    }

    [Fact]
    public void Good_file_loads_with_labels_splits_and_pixels()
    {
        using var dir = new TempDir();
        var path = WriteCsv(dir, "fer2013.csv", Header,
            Synthetic.Row(3, "Training", value: 10), Synthetic.Row(0, "PublicTest", value: 255), Synthetic.Row(6, "PrivateTest", value: 0));
        var data = Fer2013Dataset.Load(path);
        Assert.Equal(3, data.Count);
        Assert.Equal(new[] { 3, 0, 6 }, data.Labels);
        Assert.Equal(new[] { DataSplit.Training, DataSplit.PublicTest, DataSplit.PrivateTest }, data.Splits);
        Assert.All(data.Face(0).ToArray(), p => Assert.Equal(10, p));
        Assert.All(data.Face(1).ToArray(), p => Assert.Equal(255, p));
        Assert.Equal($"{path}:3", data.Origins![1]);
        using var tensor = data.ToTensor();
        Assert.Equal(new long[] { 3, 1, 48, 48 }, tensor.shape);
        Assert.Equal(TorchSharp.torch.ScalarType.Byte, tensor.dtype);
    }

    [Fact]
    public void Gzip_is_detected_by_content_not_by_name()
    {
        using var dir = new TempDir();
        var path = dir.File("data.bin"); // no .gz extension on purpose
        using (var gz = new GZipStream(File.Create(path), CompressionLevel.Fastest))
        using (var writer = new StreamWriter(gz))
        {
            writer.Write($"{Header}\n{Synthetic.Row(5)}\n{Synthetic.Row(4, "PublicTest")}\n");
        }
        var data = Fer2013Dataset.Load(path);
        Assert.Equal(new[] { 5, 4 }, data.Labels);
    }

    public static TheoryData<string, string> BadRows => new()
    {
        { Synthetic.Row(1, pixelCount: 2303), "fer2013.csv:3: expected 2304 pixels, found 2303" },
        { Synthetic.Row(1, pixelCount: 2305), "fer2013.csv:3: expected 2304 pixels, found 2305" },
        { Synthetic.Row(9), "fer2013.csv:3: field 'emotion': expected an integer 0..6, found '9'" },
        { "x," + string.Join(' ', Enumerable.Repeat(1, 2304)) + ",Training", "fer2013.csv:3: field 'emotion': expected an integer 0..6, found 'x'" },
        { Synthetic.Row(1, "Validation"), "fer2013.csv:3: field 'Usage': expected Training, PublicTest or PrivateTest, found 'Validation'" },
        { Synthetic.Row(1, value: 256), "fer2013.csv:3: field 'pixels': value 1 is 256, outside 0..255" },
        { "1," + string.Join(' ', Enumerable.Repeat("1", 2303)) + " abc,Training", "fer2013.csv:3: field 'pixels': value 2304 is 'abc', not an integer 0..255" },
        { "1,2 3", "fer2013.csv:3: expected 3 fields, found 2" },
        { Synthetic.Row(1) + ",extra", "fer2013.csv:3: expected 3 fields, found 4" },
    };

    [Theory]
    [MemberData(nameof(BadRows))]
    public void Each_kind_of_bad_row_fails_with_file_line_and_reason(string badRow, string expectedMessage)
    {
        using var dir = new TempDir();
        var path = WriteCsv(dir, "fer2013.csv", Header, Synthetic.Row(0), badRow, Synthetic.Row(2));
        var ex = Assert.Throws<DatasetFormatException>(() => Fer2013Dataset.Load(path));
        Assert.Equal(expectedMessage, ex.Message.Replace(path, "fer2013.csv", StringComparison.Ordinal));
        Assert.Equal(3, ex.Line);
    }

    [Fact]
    public void Skip_bad_rows_keeps_the_good_ones_and_lists_the_bad_lines()
    {
        using var dir = new TempDir();
        var path = WriteCsv(dir, "fer2013.csv", Header, Synthetic.Row(0), Synthetic.Row(9), Synthetic.Row(2),
            Synthetic.Row(1, pixelCount: 10), Synthetic.Row(3));
        var data = Fer2013Dataset.Load(path, new DatasetLoadOptions { SkipBadRows = true });
        Assert.Equal(new[] { 0, 2, 3 }, data.Labels);
        Assert.Equal(2, data.Report.Skipped.Count);
        Assert.StartsWith($"{path}:3:", data.Report.Skipped[0], StringComparison.Ordinal);
        Assert.StartsWith($"{path}:5:", data.Report.Skipped[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_header_is_reported_on_line_1()
    {
        using var dir = new TempDir();
        var path = WriteCsv(dir, "fer2013.csv", "label,image,split", Synthetic.Row(0));
        var ex = Assert.Throws<DatasetFormatException>(() => new Fer2013CsvReader(path).ReadAll());
        Assert.Contains(":1: expected header 'emotion,pixels,Usage', found 'label,image,split'", ex.Message);
    }

    [Fact]
    public void Empty_file_and_missing_file_give_clear_errors()
    {
        using var dir = new TempDir();
        var empty = dir.File("empty.csv");
        File.WriteAllText(empty, "");
        Assert.Contains("file is empty", Assert.Throws<DatasetFormatException>(() => new Fer2013CsvReader(empty).ReadAll()).Message);
        var missing = dir.File("nope.csv");
        Assert.Contains("no such file", Assert.Throws<FileNotFoundException>(() => Fer2013Dataset.Load(missing)).Message);
    }

    [Fact]
    public void Corrupt_gzip_names_the_file()
    {
        using var dir = new TempDir();
        var path = dir.File("broken.csv.gz");
        using (var gz = new GZipStream(File.Create(path), CompressionLevel.Fastest))
        using (var writer = new StreamWriter(gz))
        {
            writer.Write($"{Header}\n");
            for (var i = 0; i < 200; i++) writer.Write(Synthetic.Row(i % 7) + "\n");
        }
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]); // truncated download
        var ex = Assert.ThrowsAny<Exception>(() => Fer2013Dataset.Load(path));
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void Writer_output_reads_back_identically()
    {
        using var dir = new TempDir();
        var original = Synthetic.Patterns(3);
        var path = dir.File("roundtrip.csv");
        using (var writer = new StreamWriter(path)) Fer2013CsvWriter.Write(writer, original);
        var back = Fer2013Dataset.Load(path);
        Assert.Equal(original.Labels, back.Labels);
        Assert.True(original.Pixels.SequenceEqual(back.Pixels));
    }
}

public class ImageFolderDatasetTests
{
    private static void WriteImage(string path, int width, int height, int channels, byte value)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var mat = new OpenCvSharp.Mat(height, width, channels == 3 ? OpenCvSharp.MatType.CV_8UC3 : OpenCvSharp.MatType.CV_8UC1,
            OpenCvSharp.Scalar.All(value));
        Assert.True(OpenCvSharp.Cv2.ImWrite(path, mat));
    }

    [Fact]
    public void Kaggle_layout_with_synonyms_any_size_and_colour_and_prefix_splits()
    {
        using var dir = new TempDir();
        var root = Path.Combine(dir.Path, "fer2013"); // nested one level, as the archive is
        WriteImage(Path.Combine(root, "train", "Anger", "Training_1.png"), 48, 48, 1, 10);
        WriteImage(Path.Combine(root, "train", "happiness", "Training_2.jpg"), 96, 64, 3, 200);
        WriteImage(Path.Combine(root, "test", "Fearful", "PublicTest_3.bmp"), 20, 20, 1, 50);
        WriteImage(Path.Combine(root, "test", "SADNESS", "PrivateTest_4.jpeg"), 48, 48, 3, 90);
        WriteImage(Path.Combine(root, "test", "surprised", "other.png"), 48, 48, 1, 120);
        File.WriteAllText(Path.Combine(root, "test", "surprised", "notes.txt"), "ignored: not an image extension");

        var data = Fer2013Dataset.Load(dir.Path);
        Assert.Equal(5, data.Count);
        Assert.Equal(EmotionClasses.Fer2013, data.ClassNames);
        string Name(int i) => data.ClassNames[data.Labels[i]];
        var byOrigin = Enumerable.Range(0, data.Count).ToDictionary(i => Path.GetFileName(data.Origins![i]));
        Assert.Equal("angry", Name(byOrigin["Training_1.png"]));
        Assert.Equal("happy", Name(byOrigin["Training_2.jpg"]));
        Assert.Equal("fear", Name(byOrigin["PublicTest_3.bmp"]));
        Assert.Equal(DataSplit.PublicTest, data.Splits[byOrigin["PublicTest_3.bmp"]]);
        Assert.Equal(DataSplit.PrivateTest, data.Splits[byOrigin["PrivateTest_4.jpeg"]]);
        Assert.Equal(DataSplit.PrivateTest, data.Splits[byOrigin["other.png"]]); // bare "test" folder
        var happy = data.Face(byOrigin["Training_2.jpg"]).ToArray();
        Assert.Equal(48 * 48, happy.Length);
        Assert.All(happy, p => Assert.InRange(p, 195, 205)); // colour -> gray, resized

        var privateOnly = Fer2013Dataset.Load(dir.Path, new DatasetLoadOptions { Splits = [DataSplit.PrivateTest] });
        Assert.Equal(2, privateOnly.Count);
    }

    [Fact]
    public void Unreadable_files_are_reported_by_path_or_skipped_on_request()
    {
        using var dir = new TempDir();
        WriteImage(Path.Combine(dir.Path, "train", "happy", "Training_1.png"), 48, 48, 1, 10);
        var bad = Path.Combine(dir.Path, "train", "happy", "Training_2.jpg");
        File.WriteAllText(bad, "this is text, not a JPEG");
        var empty = Path.Combine(dir.Path, "train", "sad", "Training_3.png");
        Directory.CreateDirectory(Path.GetDirectoryName(empty)!);
        File.WriteAllBytes(empty, []);

        var ex = Assert.Throws<DatasetFormatException>(() => Fer2013Dataset.Load(dir.Path));
        Assert.Contains(bad, ex.Message);
        Assert.Contains(empty, ex.Message);

        var data = Fer2013Dataset.Load(dir.Path, new DatasetLoadOptions { SkipBadRows = true });
        Assert.Equal(1, data.Count);
        Assert.Equal(2, data.Report.Skipped.Count);
    }

    [Fact]
    public void Unknown_class_folder_is_named_in_the_error()
    {
        using var dir = new TempDir();
        WriteImage(Path.Combine(dir.Path, "train", "bored", "Training_1.png"), 48, 48, 1, 10);
        var ex = Assert.Throws<DatasetFormatException>(() => Fer2013Dataset.Load(dir.Path));
        Assert.Contains("class folder 'bored'", ex.Message);
    }

    [Fact]
    public void Contempt_folder_switches_to_the_FER_plus_class_set()
    {
        using var dir = new TempDir();
        WriteImage(Path.Combine(dir.Path, "train", "contempt", "a.png"), 48, 48, 1, 10);
        WriteImage(Path.Combine(dir.Path, "train", "neutral", "b.png"), 48, 48, 1, 10);
        var data = Fer2013Dataset.Load(dir.Path);
        Assert.Equal(EmotionClasses.FerPlus, data.ClassNames);
    }

    [Fact]
    public void Tar_gz_archive_of_the_layout_loads_without_extracting()
    {
        using var dir = new TempDir();
        var root = Path.Combine(dir.Path, "src");
        WriteImage(Path.Combine(root, "fer2013", "train", "happy", "Training_1.png"), 48, 48, 1, 10);
        WriteImage(Path.Combine(root, "fer2013", "test", "neutral", "PrivateTest_2.png"), 48, 48, 1, 10);
        var archive = dir.File("faces.tar.gz");
        using (var output = File.Create(archive))
        using (var gz = new System.IO.Compression.GZipStream(output, System.IO.Compression.CompressionLevel.Fastest))
        {
            System.Formats.Tar.TarFile.CreateFromDirectory(root, gz, includeBaseDirectory: false);
        }
        var data = Fer2013Dataset.Load(archive);
        Assert.Equal(2, data.Count);
        Assert.Contains(DataSplit.PrivateTest, data.Splits);
    }
}

public class FerPlusTests
{
    private const string FerPlusHeader = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF";

    [Fact]
    public void Joins_by_order_with_majority_and_distribution_targets_and_excludes_as_FER_plus_defines()
    {
        using var dir = new TempDir();
        var csv = dir.File("fer2013.csv");
        File.WriteAllLines(csv, [
            "emotion,pixels,Usage",
            Synthetic.Row(3, value: 1), Synthetic.Row(3, value: 2), Synthetic.Row(0, value: 3),
            Synthetic.Row(6, value: 4), Synthetic.Row(4, "PublicTest", value: 5), Synthetic.Row(2, "PrivateTest", value: 6),
        ]);
        var ferplus = dir.File("fer2013new.csv");
        File.WriteAllLines(ferplus, [
            FerPlusHeader,
            "Training,fer0000000.png,0,10,0,0,0,0,0,0,0,0",   // happy, unanimous
            "Training,fer0000001.png,4,5,0,0,0,0,0,1,0,0",    // happy 5/9 after dropping the single contempt vote
            "Training,,0,0,0,0,0,0,0,0,0,10",                 // not a face: empty name
            "Training,fer0000003.png,3,0,0,0,0,0,0,0,7,0",    // unknown wins
            "PublicTest,fer0000004.png,4,0,0,4,2,0,0,0,0,0",  // no majority (4/10): excluded in Majority only
            "PrivateTest,fer0000005.png,0,0,2,0,0,0,8,0,0,0", // fear
        ]);
        var majority = Fer2013Dataset.Load(csv, new DatasetLoadOptions { FerPlusLabels = ferplus });
        Assert.Equal(EmotionClasses.FerPlus, majority.ClassNames);
        Assert.Equal(new[] { "happy", "happy", "fear" }, majority.Labels.Select(l => majority.ClassNames[l]));
        Assert.Equal(new byte[] { 1, 2, 6 }, Enumerable.Range(0, majority.Count).Select(i => majority.Face(i)[0]));
        Assert.Null(majority.LabelDistributions);

        var soft = Fer2013Dataset.Load(csv, new DatasetLoadOptions { FerPlusLabels = ferplus, FerPlusMode = FerPlusLabelMode.Distribution });
        Assert.Equal(4, soft.Count);
        var row = soft.LabelDistributions!.AsSpan(2 * 8, 8).ToArray(); // the PublicTest face
        Assert.Equal(0.4f, row[0], 5); // neutral 4/10
        Assert.Equal(0.4f, row[3], 5); // sad 4/10
        Assert.Equal(0.2f, row[4], 5); // angry 2/10
        Assert.Equal(DataSplit.PublicTest, soft.Splits[2]);
    }

    [Fact]
    public void Row_count_or_usage_mismatch_is_a_clear_error()
    {
        using var dir = new TempDir();
        var csv = dir.File("fer2013.csv");
        File.WriteAllLines(csv, ["emotion,pixels,Usage", Synthetic.Row(3), Synthetic.Row(3)]);
        var ferplus = dir.File("fer2013new.csv");
        File.WriteAllLines(ferplus, [FerPlusHeader, "Training,a.png,0,10,0,0,0,0,0,0,0,0"]);
        Assert.Contains("has 1 label rows but the FER2013 data has 2",
            Assert.Throws<DatasetFormatException>(() => Fer2013Dataset.Load(csv, new DatasetLoadOptions { FerPlusLabels = ferplus })).Message);
        File.WriteAllLines(ferplus, [FerPlusHeader, "Training,a.png,0,10,0,0,0,0,0,0,0,0", "PublicTest,b.png,0,10,0,0,0,0,0,0,0,0"]);
        var ex = Assert.Throws<DatasetFormatException>(() => Fer2013Dataset.Load(csv, new DatasetLoadOptions { FerPlusLabels = ferplus }));
        Assert.Equal(3, ex.Line);
    }

    [Fact]
    public void Labels_joined_to_reshuffled_rows_are_refused_and_noisy_aligned_ones_accepted()
    {
        // FER+ columns of the FER2013 classes angry, disgust, fear, happy, sad, surprise, neutral.
        int[] ferPlusColumn = [4, 5, 6, 1, 3, 2, 0];
        const int count = 420;
        var rng = new Random(5);
        var labels = Enumerable.Range(0, count).Select(_ => rng.Next(7)).ToArray();
        var data = new FaceDataset(EmotionClasses.Fer2013, new byte[count * FaceDataset.PixelsPerImage], labels,
            Enumerable.Repeat(DataSplit.Training, count).ToArray());
        // The crowd relabels a third of the faces (any of the 8 FER+ classes), as FER+ relabelled many noisy ones.
        var votes = labels.Select(l => rng.NextDouble() < 1 / 3.0 ? rng.Next(8) : ferPlusColumn[l]).ToArray();
        string Line(int column) => "Training,f.png," + string.Join(',', Enumerable.Range(0, 10).Select(c => c == column ? 10 : 0));

        using var dir = new TempDir();
        var aligned = dir.File("aligned.csv");
        File.WriteAllLines(aligned, [FerPlusHeader, .. votes.Select(Line)]);
        Assert.Equal(EmotionClasses.FerPlus, FerPlusLabels.Apply(data, aligned, FerPlusLabelMode.Majority).ClassNames);

        var shuffled = dir.File("shuffled.csv");
        File.WriteAllLines(shuffled, [FerPlusHeader, .. votes.OrderBy(_ => rng.Next()).Select(Line)]);
        var ex = Assert.Throws<DatasetFormatException>(() => FerPlusLabels.Apply(data, shuffled, FerPlusLabelMode.Distribution));
        Assert.Equal(shuffled, ex.File);
        Assert.Contains("rows are not in the FER2013 file's order", ex.Message);
        Assert.Contains("Cohen's kappa", ex.Message);

        // Too few faces to judge: the small files of the other tests are not checked.
        var few = new FaceDataset(EmotionClasses.Fer2013, new byte[10 * FaceDataset.PixelsPerImage], [.. labels.Take(10)],
            Enumerable.Repeat(DataSplit.Training, 10).ToArray());
        var fewShuffled = dir.File("few.csv");
        File.WriteAllLines(fewShuffled, [FerPlusHeader, .. labels.Take(10).Select(l => Line(ferPlusColumn[(l + 1) % 7]))]);
        Assert.Equal(10, FerPlusLabels.Apply(few, fewShuffled, FerPlusLabelMode.Majority).Count);
    }

    [Fact]
    public void Bad_vote_field_names_line_and_column()
    {
        using var dir = new TempDir();
        var ferplus = dir.File("fer2013new.csv");
        File.WriteAllLines(ferplus, [FerPlusHeader, "Training,a.png,0,ten,0,0,0,0,0,0,0,0"]);
        var ex = Assert.Throws<DatasetFormatException>(() => FerPlusLabels.Read(ferplus));
        Assert.Contains(":2: field 'happiness'", ex.Message);
    }
}

/// <summary>The real FER2013 files in ../shared (skipped with a reason when absent).</summary>
public class RealFer2013Tests
{
    private static readonly int[] ClassTotals = [4953, 547, 5121, 8989, 6077, 4002, 6198];

    private static void AssertOfficialCounts(FaceDataset data)
    {
        Assert.Equal(35887, data.Count);
        var counts = data.CountsBySplitAndClass();
        int SplitTotal(DataSplit s) => Enumerable.Range(0, 7).Sum(c => counts[(int)s, c]);
        Assert.Equal(28709, SplitTotal(DataSplit.Training));
        Assert.Equal(3589, SplitTotal(DataSplit.PublicTest));
        Assert.Equal(3589, SplitTotal(DataSplit.PrivateTest));
        Assert.Equal(ClassTotals, data.CountsByClass());
    }

    [SharedDataFact]
    public void Csv_gz_has_the_official_split_and_class_counts()
    {
        var data = Fer2013Dataset.Load(Fer2013Dataset.FindSharedData()!);
        AssertOfficialCounts(data);
        Assert.Empty(data.Report.Skipped);
    }

    [SharedDataFact("fer2013-images.tar.gz")]
    public void Image_folder_release_extracted_and_as_archive_has_the_same_counts()
    {
        var archive = Fer2013Dataset.FindSharedData("fer2013-images.tar.gz")!;
        AssertOfficialCounts(Fer2013Dataset.Load(archive));

        using var dir = new TempDir();
        using (var stream = File.OpenRead(archive))
        using (var gz = new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress))
        {
            System.Formats.Tar.TarFile.ExtractToDirectory(gz, dir.Path, overwriteFiles: false);
        }
        var folder = Fer2013Dataset.Load(dir.Path);
        AssertOfficialCounts(folder);
        var privateOnly = Fer2013Dataset.Load(dir.Path, new DatasetLoadOptions { Splits = [DataSplit.PrivateTest] });
        Assert.Equal(3589, privateOnly.Count);
    }
}

public class DataCliTests
{
    [Fact]
    public void Stats_json_and_export_images_round_trip_through_the_CLI()
    {
        using var dir = new TempDir();
        var csv = dir.File("small.csv");
        using (var writer = new StreamWriter(csv)) Fer2013CsvWriter.Write(writer, Synthetic.Patterns(2));
        var stats = Cli.Run("data", "stats", csv, "--json");
        Assert.Equal(0, stats.ExitCode);
        using var json = System.Text.Json.JsonDocument.Parse(stats.Stdout);
        Assert.Equal(14, json.RootElement.GetProperty("count").GetInt32());
        Assert.Equal(2, json.RootElement.GetProperty("splits").GetProperty("Training").GetProperty("happy").GetInt32());

        var outDir = Path.Combine(dir.Path, "images");
        var export = Cli.Run("data", "export-images", csv, outDir);
        Assert.True(export.ExitCode == 0, export.Stderr);
        Assert.Equal(14, Directory.GetFiles(outDir, "*.png", SearchOption.AllDirectories).Length);
        var back = Fer2013Dataset.Load(outDir);
        Assert.Equal(14, back.Count);
        Assert.Equal(new[] { 2, 2, 2, 2, 2, 2, 2 }, back.CountsByClass());

        var again = Cli.Run("data", "export-images", csv, outDir);
        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("not empty", again.Stderr);
    }

    [Fact]
    public void Average_faces_writes_one_image_per_class_and_a_scene_and_names_a_class_it_lacks()
    {
        using var dir = new TempDir();
        var csv = dir.File("small.csv");
        using (var writer = new StreamWriter(csv)) Fer2013CsvWriter.Write(writer, Synthetic.Patterns(AverageFaces.MinimumFaces));
        var outDir = Path.Combine(dir.Path, "averages");

        var unknown = Cli.Run("data", "average-faces", csv, outDir, "--classes", "happy,joy");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("--classes: no average face of 'joy'", unknown.Stderr);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any(), "a refused run wrote files");

        var made = Cli.Run("data", "average-faces", csv, outDir, "--classes", "happy,surprise", "--side", "96");
        Assert.True(made.ExitCode == 0, made.Stderr);
        Assert.Equal(7, Directory.GetFiles(outDir, "average.png", SearchOption.AllDirectories).Length);
        using (var happy = Cv2.ImRead(Path.Combine(outDir, "happy", "average.png"), ImreadModes.Unchanged))
        {
            Assert.Equal(new Size(48, 48), happy.Size());
            // Synthetic class 3 (happy) is a bright square in grid cell 3 (row 1, column 0): its mean is brightest there.
            Assert.True(happy.At<byte>(16 + 6, 6) > happy.At<byte>(6, 16 + 6) + 100);
        }
        using (var scene = Cv2.ImRead(Path.Combine(outDir, "scene.png")))
        {
            Assert.True(scene.Width >= 2 * 96 && scene.Height >= 96, $"scene {scene.Width}x{scene.Height}");
        }

        var again = Cli.Run("data", "average-faces", csv, outDir);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("not empty", again.Stderr);
    }

    [Fact]
    public void Bad_row_gives_exit_code_2_and_the_place_on_stderr()
    {
        using var dir = new TempDir();
        var csv = dir.File("bad.csv");
        File.WriteAllLines(csv, ["emotion,pixels,Usage", Synthetic.Row(1), Synthetic.Row(1, pixelCount: 2303)]);
        var result = Cli.Run("data", "stats", csv);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"{csv}:3: expected 2304 pixels, found 2303", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr); // no stack trace

        var skipped = Cli.Run("data", "stats", csv, "--skip-bad-rows");
        Assert.Equal(0, skipped.ExitCode);
        Assert.Contains("skipped 1", skipped.Stdout);
    }

    [Fact]
    public void Preview_augment_draws_a_grid_of_originals_and_variants()
    {
        using var dir = new TempDir();
        var csv = dir.File("small.csv");
        using (var writer = new StreamWriter(csv)) Fer2013CsvWriter.Write(writer, Synthetic.Patterns(2));
        var png = dir.File("grid.png");
        var result = Cli.Run("data", "preview-augment", csv, "--out", png, "--rows", "3", "--augment", "rotate=20,flip");
        Assert.True(result.ExitCode == 0, result.Stderr);
        using var image = OpenCvSharp.Cv2.ImRead(png);
        Assert.Equal(4 + 8 * (96 + 4), image.Width); // original + 7 variants
        Assert.Equal(28 + 3 * (96 + 4) + 4, image.Height);
        var bad = Cli.Run("data", "preview-augment", csv, "--out", png, "--augment", "sharpen=3");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("unknown augment option 'sharpen", bad.Stderr);
    }

    [Fact]
    public void Help_and_version_work()
    {
        var help = Cli.Run("--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("data", help.Stdout);
        Assert.Contains("train", help.Stdout);
        var version = Cli.Run("--version");
        Assert.Equal(0, version.ExitCode);
        Assert.Matches(@"\d+\.\d+\.\d+", version.Stdout);
    }
}
