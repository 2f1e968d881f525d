using System.CommandLine;

using FerSharp.Evaluation;
using FerSharp.Inference;

namespace FerSharp.Cli.Commands;

/// <summary>How faces in photos are found and classified: shared by <c>fer predict</c> and <c>fer serve</c> (its uploads).</summary>
internal sealed class RecognitionOptions
{
    public Option<double> Margin { get; } = new("--margin")
    {
        Description = $"Grow detected boxes by this fraction per side before classifying (0 to {RecognizerOptions.MaxMargin}).",
        DefaultValueFactory = _ => new RecognizerOptions().Margin,
    };

    public Option<TtaMode> Tta { get; } = new("--tta")
    {
        Description = "Test-time augmentation per face: None, Flip, or Crops (10 views: the most accurate, about 10x the time per face; see the model card).",
        DefaultValueFactory = _ => TtaMode.None,
    };

    public Option<FaceDetectorKind> Detector { get; } = DetectorOption.Create();

    public Option<int> MaxLook { get; } = CreateMaxLook();

    /// <summary>The most megapixels an image may declare; OpenCV's own guard (OPENCV_IO_MAX_IMAGE_PIXELS) stops at 256.</summary>
    public const double MaxMegapixelsLimit = 256;

    public Option<double> MaxMegapixels { get; } = new("--max-megapixels")
    {
        Description = $"Images whose header declares more pixels than this many millions are refused before decoding (up to {MaxMegapixelsLimit}).",
        DefaultValueFactory = _ => new RecognizerOptions().MaxImagePixels / 1e6,
    };

    public Option<double> MinScore { get; } = new("--min-score")
    {
        Description = "BlazeFace only: the detector score (0 to 1) a face needs to count; each face's score is in the output (detector_score). Lower finds more turned and partly hidden faces and more things that are not faces.",
        DefaultValueFactory = _ => new BlazeFaceOptions().MinScore,
    };

    public Option<bool> EveryLook { get; } = new("--every-look")
    {
        Description = "BlazeFace: make every look up to --max-look. By default every look past the first (256) is made only when the look at half its scale shows a candidate for a face too small for that one; photos of large faces mostly have none, and each look costs about 4 times the one before.",
    };

    public Option<bool> NoLevel { get; } = new("--no-level")
    {
        Description = "Classify each face as its box shows it, without first turning it so that its eyes are level (BlazeFace finds the eyes; FER2013's faces are mostly level).",
    };

    private static Option<int> CreateMaxLook()
    {
        var option = new Option<int>("--max-look")
        {
            Description = "BlazeFace's largest look at each photo, as a longer side in pixels: 256, 512, 1024 or 2048. Each look doubles the one before and finds faces half the size (down to about a sixth of what it sees); looks from 1024 on stop at the photo's own size, and every look past 256 is made only where the look before hints at smaller faces (see --every-look). 2048 finds the smaller faces of 12-megapixel group photos, at about 4 times the time.",
            DefaultValueFactory = _ => new BlazeFaceOptions().MaxSide,
        };
        option.AcceptOnlyFromAmong("256", "512", "1024", "2048");
        return option;
    }

    public void AddTo(Command command)
    {
        AddDetectionTo(command);
        command.Options.Add(Tta);
    }

    /// <summary>The options of how faces are found and cropped, for a command that has its own --tta.</summary>
    public void AddDetectionTo(Command command)
    {
        command.Options.Add(Margin);
        command.Options.Add(Detector);
        command.Options.Add(MaxLook);
        command.Options.Add(EveryLook);
        command.Options.Add(MinScore);
        command.Options.Add(MaxMegapixels);
        command.Options.Add(NoLevel);
    }

    /// <summary>The settings in a line, for a command's summary: <c>BlazeFace up to 1024 px, margin 0.1, one view per face</c>.</summary>
    public static string Describe(EmotionRecognizer recognizer)
    {
        var detector = recognizer.Detector is BlazeFaceDetector blazeFace ? $"BlazeFace up to {blazeFace.Options.MaxSide} px" : recognizer.Options.DetectorKind.ToString();
        var views = recognizer.Options.Tta switch
        {
            TtaMode.Crops => "ten crops per face",
            TtaMode.Flip => "each face mirrored too",
            _ when recognizer.Model.Metadata.FlipAveraging => "each face averaged with its mirror (the package's flip averaging)",
            _ => "one view per face",
        };
        var level = recognizer.Options.LevelFaces && recognizer.Detector is BlazeFaceDetector ? ", faces levelled by their eyes" : "";
        return $"{detector}, margin {recognizer.Options.Margin.ToString(System.Globalization.CultureInfo.InvariantCulture)}{level}, {views}";
    }

    /// <summary>The recognizer settings the options give; <see cref="RecognizerOptions.Validate"/> checks them (call it before loading a model).</summary>
    public RecognizerOptions Read(ParseResult parse) => new()
    {
        DetectorKind = parse.GetValue(Detector),
        BlazeFace = new BlazeFaceOptions
        {
            MaxSide = parse.GetValue(MaxLook),
            MinScore = (float)OptionRules.Within(parse, MinScore, 0.01, 0.99, "a score between 0.01 and 0.99"),
            HintScore = parse.GetValue(EveryLook) ? 0 : new BlazeFaceOptions().HintScore,
        },
        Margin = parse.GetValue(Margin),
        MaxImagePixels = (long)Math.Round(OptionRules.Within(parse, MaxMegapixels, 0.01, MaxMegapixelsLimit, $"megapixels from 0.01 to {MaxMegapixelsLimit}") * 1e6),
        Tta = parse.GetValue(Tta),
        LevelFaces = !parse.GetValue(NoLevel),
    };
}
