using FerSharp.Inference;

namespace FerSharp.Cli;

internal static class ShippedModels
{
    public static string DefaultPath() => ModelCatalog.DefaultModelPath()
        ?? throw new UserFacingException("no shipped model found under models/; pass --model <package folder>");
}
