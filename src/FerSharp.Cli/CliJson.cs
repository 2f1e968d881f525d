using System.Text.Json;

namespace FerSharp.Cli;

internal static class CliJson
{
    public static JsonSerializerOptions Indented { get; } = new() { WriteIndented = true };
}
