using System.CommandLine;

using FerSharp.Data;

namespace FerSharp.Cli.Commands;

/// <summary>The dataset options every data-reading command shares.</summary>
internal sealed class DatasetOptions
{
    public Option<bool> SkipBadRows { get; } = new("--skip-bad-rows") { Description = "Skip malformed rows / unreadable images and list them, instead of failing." };
    public Option<string[]> Split { get; } = new("--split") { Description = "Only these splits: Training, PublicTest, PrivateTest (repeatable).", AllowMultipleArgumentsPerToken = true };
    public Option<string?> FerPlus { get; } = new("--ferplus") { Description = "fer2013new.csv: FER+ votes (with Majority or Distribution: relabel to 8 classes incl. contempt; with Fer2013Soft: keep the 7 FER2013 labels and mix the votes into the training targets)." };
    public Option<FerPlusLabelMode> FerPlusMode { get; } = new("--ferplus-mode") { Description = "FER+ targets: Majority, Distribution or Fer2013Soft.", DefaultValueFactory = _ => FerPlusLabelMode.Majority };

    /// <summary>Adds the options; <paramref name="withSplit"/> false for a command with a --split of its own.</summary>
    public void AddTo(Command command, bool withSplit = true)
    {
        command.Options.Add(SkipBadRows);
        if (withSplit) command.Options.Add(Split);
        command.Options.Add(FerPlus);
        command.Options.Add(FerPlusMode);
    }

    /// <summary>Loads <paramref name="path"/> as the options say; <paramref name="splits"/>, when given, instead of --split.</summary>
    public FaceDataset Load(ParseResult parse, string path, CancellationToken ct, DataSplit[]? splits = null)
    {
        splits ??= (parse.GetValue(Split) ?? []).Select(DataSplits.Parse).ToArray();
        return Fer2013Dataset.Load(path, new DatasetLoadOptions
        {
            SkipBadRows = parse.GetValue(SkipBadRows),
            Splits = splits,
            FerPlusLabels = parse.GetValue(FerPlus),
            FerPlusMode = parse.GetValue(FerPlusMode),
        }, ct);
    }
}
