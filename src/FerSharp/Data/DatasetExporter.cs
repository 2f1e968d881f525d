namespace FerSharp.Data;

/// <summary>Writes faces out as the Kaggle image-folder layout (<c>train/&lt;class&gt;/Training_&lt;n&gt;.png</c>).</summary>
public static class DatasetExporter
{
    public static int ExportImages(FaceDataset dataset, string outDir, CancellationToken cancellationToken = default, Action? onWritten = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var written = 0;
        for (var i = 0; i < dataset.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var split = dataset.Splits[i];
            var folder = Path.Combine(outDir, split == DataSplit.Training ? "train" : "test", dataset.ClassNames[dataset.Labels[i]]);
            Directory.CreateDirectory(folder);
            var file = Path.Combine(folder, $"{split}_{i}.png");
            var tmp = file + ".tmp";
            File.WriteAllBytes(tmp, FaceImages.EncodePng(dataset.Face(i)));
            File.Move(tmp, file, overwrite: true);
            written++;
            onWritten?.Invoke();
        }
        return written;
    }
}
