using FerSharp.Data;
using FerSharp.Inference;

namespace FerSharp.Evaluation;

/// <summary>One labelled photo of a <see cref="DetectedEvaluation"/>.</summary>
public sealed record LabelledPhoto(string Path, string TrueClass);

/// <summary>
/// What became of one photo: the face classified (the largest found), or none. <see cref="Predicted"/> is the
/// most probable of the data's classes; <see cref="PredictedAny"/> of all the model's classes.
/// </summary>
public sealed record DetectedPhotoResult(LabelledPhoto Photo, int FacesFound, FaceBox? Box, string? Predicted, string? PredictedAny,
    IReadOnlyDictionary<string, float>? Probabilities, string? Error)
{
    /// <summary>How the answering face was found (meaningless without one).</summary>
    public FaceFinding Finding { get; init; }
}

/// <summary>The scores of labelled photos taken through detect, crop and classify, as <c>fer predict</c> takes them.</summary>
public sealed record DetectedEvaluationResult
{
    public required string ModelName { get; init; }
    /// <summary>The classes of the data (its folders), a subset of the model's.</summary>
    public required IReadOnlyList<string> Classes { get; init; }
    public required IReadOnlyList<string> ModelClasses { get; init; }
    public required IReadOnlyList<DetectedPhotoResult> Photos { get; init; }

    public int Count => Photos.Count;
    public int NoFace => Photos.Count(p => p.FacesFound == 0 && p.Error is null);
    public int Unreadable => Photos.Count(p => p.Error is not null);
    public int Classified => Photos.Count(p => p.Predicted is not null);

    /// <summary>Right answers over every photo: a photo with no face found (or unreadable) counts as wrong.</summary>
    public double Accuracy => Count == 0 ? 0 : (double)Photos.Count(p => p.Predicted == p.Photo.TrueClass) / Count;

    /// <summary>Right answers over the photos where a face was found and classified.</summary>
    public double AccuracyOnFaces => Classified == 0 ? 0 : (double)Photos.Count(p => p.Predicted is not null && p.Predicted == p.Photo.TrueClass) / Classified;

    /// <summary>As <see cref="Accuracy"/>, the answer taken over all the model's classes (a neutral answer to a data set without neutral is wrong).</summary>
    public double AccuracyAnyClass => Count == 0 ? 0 : (double)Photos.Count(p => p.PredictedAny == p.Photo.TrueClass) / Count;

    /// <summary>Per class of the data: photos, right answers, and photos with no face found.</summary>
    public IReadOnlyList<(string Class, int Photos, int Right, int NoFace)> PerClass => Classes
        .Select(c => (c, Photos.Count(p => p.Photo.TrueClass == c), Photos.Count(p => p.Photo.TrueClass == c && p.Predicted == c),
            Photos.Count(p => p.Photo.TrueClass == c && p.Predicted is null)))
        .ToList();

    /// <summary>Rows true class, columns predicted class of the data, then a last column for photos without an answer.</summary>
    public int[][] ConfusionWithNoFace()
    {
        var matrix = Classes.Select(_ => new int[Classes.Count + 1]).ToArray();
        foreach (var p in Photos)
        {
            var row = Classes.ToList().IndexOf(p.Photo.TrueClass);
            var column = p.Predicted is null ? Classes.Count : Classes.ToList().IndexOf(p.Predicted);
            matrix[row][column]++;
        }
        return matrix;
    }
}

/// <summary>
/// Scores a model on ordinary labelled photos, <c>&lt;folder&gt;/&lt;class&gt;/&lt;image&gt;</c> (faces not cropped),
/// through the same detect, crop and classify path as <c>fer predict</c>: the generalization a user sees.
/// </summary>
public static class DetectedEvaluation
{
    private static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff",
    };

    /// <summary>The photos of <c>&lt;folder&gt;/&lt;class&gt;/…</c>, class folders named as in <see cref="EmotionClasses"/> (synonyms allowed).</summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="DatasetFormatException">A folder that is not an expression, or no images at all.</exception>
    public static IReadOnlyList<LabelledPhoto> ListPhotos(string folder, IReadOnlyList<string> modelClasses)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(modelClasses);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: no such folder (--detect takes a folder of <class>/<image>)");
        var photos = new List<LabelledPhoto>();
        foreach (var classDir in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
        {
            var name = System.IO.Path.GetFileName(classDir);
            var canonical = EmotionClasses.Canonical(name)
                ?? throw new DatasetFormatException(folder, 0, $"folder '{name}' is not an expression; expected <class>/<image> with classes such as {string.Join(", ", modelClasses)} (or synonyms: anger, happiness, …)");
            if (!modelClasses.Contains(canonical))
            {
                throw new DatasetFormatException(folder, 0, $"folder '{name}' ({canonical}) is not a class of this model ({string.Join(", ", modelClasses)})");
            }
            photos.AddRange(Directory.EnumerateFiles(classDir, "*", SearchOption.AllDirectories)
                .Where(f => ImageExtensions.Contains(System.IO.Path.GetExtension(f)))
                .Order(StringComparer.Ordinal)
                .Select(f => new LabelledPhoto(f, canonical)));
        }
        if (photos.Count == 0)
        {
            throw new DatasetFormatException(folder, 0, $"no images found; --detect expects <folder>/<class>/<image> ({string.Join(", ", ImageExtensions.Order())})");
        }
        return photos;
    }

    /// <summary>Runs every photo through <paramref name="recognizer"/>; the largest face found is the photo's answer.</summary>
    public static DetectedEvaluationResult Evaluate(EmotionRecognizer recognizer, IReadOnlyList<LabelledPhoto> photos,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(recognizer);
        ArgumentNullException.ThrowIfNull(photos);
        var modelClasses = recognizer.Model.ClassNames;
        var classes = modelClasses.Where(c => photos.Any(p => p.TrueClass == c)).ToList();
        var results = new DetectedPhotoResult[photos.Count];
        var done = 0;
        Parallel.For(0, photos.Count, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            results[i] = One(recognizer, photos[i], classes);
            progress?.Report(Interlocked.Increment(ref done));
        });
        return new DetectedEvaluationResult { ModelName = recognizer.Model.Metadata.Name, Classes = classes, ModelClasses = modelClasses, Photos = results };
    }

    private static DetectedPhotoResult One(EmotionRecognizer recognizer, LabelledPhoto photo, IReadOnlyList<string> classes)
    {
        IReadOnlyList<FaceEmotion> faces;
        try
        {
            faces = recognizer.Recognize(photo.Path);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or ArgumentException)
        {
            return new DetectedPhotoResult(photo, 0, null, null, null, null, ex.Message);
        }
        if (faces.Count == 0) return new DetectedPhotoResult(photo, 0, null, null, null, null, null);
        var face = faces.MaxBy(f => (long)f.Box.Width * f.Box.Height)!;
        var predicted = classes.MaxBy(c => face.Probabilities[c]);
        return new DetectedPhotoResult(photo, faces.Count, face.Box, predicted, face.Emotion, face.Probabilities, null) { Finding = face.Finding };
    }
}
