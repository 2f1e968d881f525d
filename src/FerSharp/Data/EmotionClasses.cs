namespace FerSharp.Data;

/// <summary>Class-name sets of the supported label schemes and the synonyms users' folders use.</summary>
public static class EmotionClasses
{
    /// <summary>FER2013 labels, in the order of the CSV's <c>emotion</c> column (0..6).</summary>
    public static IReadOnlyList<string> Fer2013 { get; } =
        ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

    /// <summary>FER+ labels, in the order of the vote columns of <c>fer2013new.csv</c>.</summary>
    public static IReadOnlyList<string> FerPlus { get; } =
        ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"];

    private static readonly Dictionary<string, string> Synonyms = new(StringComparer.OrdinalIgnoreCase)
    {
        ["angry"] = "angry",
        ["anger"] = "angry",
        ["mad"] = "angry",
        ["disgust"] = "disgust",
        ["disgusted"] = "disgust",
        ["fear"] = "fear",
        ["fearful"] = "fear",
        ["afraid"] = "fear",
        ["scared"] = "fear",
        ["happy"] = "happy",
        ["happiness"] = "happy",
        ["joy"] = "happy",
        ["sad"] = "sad",
        ["sadness"] = "sad",
        ["surprise"] = "surprise",
        ["surprised"] = "surprise",
        ["neutral"] = "neutral",
        ["calm"] = "neutral",
        ["contempt"] = "contempt",
    };

    /// <summary>The position of <paramref name="name"/> (exact, canonical) in <paramref name="classes"/>, or -1.</summary>
    public static int IndexOf(IReadOnlyList<string> classes, string name)
    {
        ArgumentNullException.ThrowIfNull(classes);
        for (var i = 0; i < classes.Count; i++)
        {
            if (classes[i] == name) return i;
        }
        return -1;
    }

    /// <summary>The canonical name for <paramref name="name"/> (case-insensitive, synonyms folded), or null.</summary>
    public static string? Canonical(string name) =>
        Synonyms.TryGetValue(name.Trim(), out var canonical) ? canonical : null;
}
