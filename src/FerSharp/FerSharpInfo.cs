using System.Reflection;

namespace FerSharp;

public static class FerSharpInfo
{
    public static string Version { get; } =
        typeof(FerSharpInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";
}
