using System.Runtime.InteropServices;

namespace FerSharp;

/// <summary>
/// Environment variables that native libraries (libtorch, OpenCV) read from the C environment. On Unix,
/// .NET's <see cref="Environment.SetEnvironmentVariable(string, string)"/> changes only the managed copy, so
/// these go through libc.
/// </summary>
public static class NativeEnvironment
{
    /// <summary>Sets <paramref name="name"/> for this process unless the user's environment already sets it (theirs wins).</summary>
    public static void SetDefault(string name, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(value);
        if (Environment.GetEnvironmentVariable(name) is not null) return;
        if (OperatingSystem.IsWindows())
        {
            Environment.SetEnvironmentVariable(name, value);
            return;
        }
        _ = SetEnv(name, value, 0);
    }

    [DllImport("libc", EntryPoint = "setenv", CharSet = CharSet.Ansi)]
    private static extern int SetEnv(string name, string value, int overwrite);
}
