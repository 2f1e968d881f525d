using System.Text.Json;
using System.Text.Json.Nodes;

using FerSharp.Models;

namespace FerSharp.Training;

/// <summary>The training recipe a package's <c>model.json</c> keeps (<see cref="ModelMetadata.Training"/>) as <see cref="TrainOptions"/>.</summary>
public static class TrainingRecipe
{
    /// <summary>The recipe the package was trained with; null when it records none.</summary>
    public static TrainOptions? TrainOptions(this ModelMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        return metadata.Training?.Deserialize<TrainOptions>(ModelMetadata.JsonOptions);
    }

    /// <summary>The recipe as <c>model.json</c> writes it.</summary>
    public static JsonObject ToJson(this TrainOptions options) =>
        JsonSerializer.SerializeToNode(options, ModelMetadata.JsonOptions)!.AsObject();
}
