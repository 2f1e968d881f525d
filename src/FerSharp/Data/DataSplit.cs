namespace FerSharp.Data;

/// <summary>The three FER2013 partitions: train on Training, tune on PublicTest, report on PrivateTest.</summary>
public enum DataSplit
{
    Training = 0,
    PublicTest = 1,
    PrivateTest = 2,
}

public static class DataSplits
{
    public static IReadOnlyList<DataSplit> All { get; } = [DataSplit.Training, DataSplit.PublicTest, DataSplit.PrivateTest];

    /// <summary>Parses a split name as users write it (<c>Training</c>, <c>train</c>, <c>PublicTest</c>, <c>val</c>, ...).</summary>
    public static bool TryParse(string text, out DataSplit split)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "training" or "train":
                split = DataSplit.Training;
                return true;
            case "publictest" or "public" or "val" or "valid" or "validation":
                split = DataSplit.PublicTest;
                return true;
            case "privatetest" or "private" or "test":
                split = DataSplit.PrivateTest;
                return true;
            default:
                split = default;
                return false;
        }
    }

    public static DataSplit Parse(string text) => TryParse(text, out var split)
        ? split
        : throw new ArgumentException($"unknown split '{text}': expected Training, PublicTest or PrivateTest");

    /// <summary>Original split from a Kaggle-release file name such as <c>PrivateTest_789.jpg</c>.</summary>
    public static DataSplit? FromFileNamePrefix(string fileName)
    {
        if (fileName.StartsWith("Training_", StringComparison.OrdinalIgnoreCase)) return DataSplit.Training;
        if (fileName.StartsWith("PublicTest_", StringComparison.OrdinalIgnoreCase)) return DataSplit.PublicTest;
        if (fileName.StartsWith("PrivateTest_", StringComparison.OrdinalIgnoreCase)) return DataSplit.PrivateTest;
        return null;
    }
}
