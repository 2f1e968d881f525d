using System.Diagnostics;

using FerSharp.Build;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Tests;

public class ElfVersionNeedTests
{
    /// <summary>The libstdc++ version TorchSharp 0.107's native library needs and Debian 12 lacks.</summary>
    internal const string Version = "GLIBCXX_3.4.32";

    /// <summary>The NuGet global packages folder: $NUGET_PACKAGES, else ~/.nuget/packages.</summary>
    internal static string NuGetPackagesFolder() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } folder
            ? folder
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    private static string OriginalLibTorchSharp()
    {
        var path = Path.Combine(NuGetPackagesFolder(), "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"TorchSharp native library not found in the NuGet cache at {path}");
        return path;
    }

    [Fact]
    public void Real_library_declares_the_GCC13_need_and_patching_makes_only_it_weak()
    {
        using var dir = new TempDir();
        var copy = dir.File("libLibTorchSharp.so");
        File.Copy(OriginalLibTorchSharp(), copy);
        var before = File.ReadAllBytes(copy);
        var needsBefore = ElfVersionNeed.ReadNeeds(before);
        Assert.Contains(needsBefore, n => n.Version == Version && (n.Flags & 2) == 0);

        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionNeed.WeakenFile(copy, Version));

        var after = File.ReadAllBytes(copy);
        var needsAfter = ElfVersionNeed.ReadNeeds(after);
        Assert.Equal(needsBefore.Length, needsAfter.Length);
        for (var i = 0; i < needsBefore.Length; i++)
        {
            var expectedFlags = needsBefore[i].Version == Version ? (ushort)(needsBefore[i].Flags | 2) : needsBefore[i].Flags;
            Assert.Equal((needsBefore[i].File, needsBefore[i].Version, expectedFlags), needsAfter[i]);
        }
        Assert.Equal(before.Length, after.Length);
        Assert.Equal(1, Enumerable.Range(0, before.Length).Count(i => before[i] != after[i])); // one flag byte
        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionNeed.WeakenFile(copy, Version));
    }

    [Fact]
    public void A_version_that_is_not_needed_is_left_alone()
    {
        using var dir = new TempDir();
        var copy = dir.File("lib.so");
        File.Copy(OriginalLibTorchSharp(), copy);
        var before = File.ReadAllBytes(copy);
        Assert.Equal(ElfPatchOutcome.VersionNotNeeded, ElfVersionNeed.WeakenFile(copy, "GLIBCXX_9.9.99"));
        Assert.Equal(before, File.ReadAllBytes(copy));
    }

    [Fact]
    public void Small_fixture_built_with_the_system_compiler_is_patched()
    {
        if (!File.Exists("/usr/bin/cc") && !File.Exists("/usr/bin/gcc"))
        {
            return; // no compiler: covered by the real-library test above
        }
        using var dir = new TempDir();
        File.WriteAllText(dir.File("fixture.c"), "#include <stdio.h>\nint fixture(void) { return puts(\"x\"); }\n");
        var so = dir.File("libfixture.so");
        using (var cc = Process.Start("cc", ["-shared", "-fPIC", "-o", so, dir.File("fixture.c")])!)
        {
            cc.WaitForExit();
            Assert.Equal(0, cc.ExitCode);
        }
        var needs = ElfVersionNeed.ReadNeeds(File.ReadAllBytes(so));
        var glibc = Assert.Single(needs, n => n.Version.StartsWith("GLIBC_2.", StringComparison.Ordinal));
        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionNeed.WeakenFile(so, glibc.Version));
        Assert.Contains(ElfVersionNeed.ReadNeeds(File.ReadAllBytes(so)), n => n.Version == glibc.Version && (n.Flags & 2) != 0);
    }

    [Fact]
    public void Not_an_elf_file_is_rejected_clearly()
    {
        var ex = Assert.Throws<InvalidDataException>(() => ElfVersionNeed.ReadNeeds("hello world, definitely not ELF"u8.ToArray()));
        Assert.Contains("not an ELF", ex.Message);
    }

    [Fact]
    public void Build_output_copy_is_patched_exactly_when_the_system_lacks_the_version_and_the_cache_is_untouched()
    {
        var output = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}cpu{Path.DirectorySeparatorChar}", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(output);
        var systemHas = ElfVersionNeed.SystemLibStdCxxHas(Version);
        foreach (var file in output)
        {
            var need = ElfVersionNeed.ReadNeeds(File.ReadAllBytes(file)).Single(n => n.Version == Version);
            Assert.Equal(!systemHas, (need.Flags & 2) != 0);
        }
        var cached = ElfVersionNeed.ReadNeeds(File.ReadAllBytes(OriginalLibTorchSharp())).Single(n => n.Version == Version);
        Assert.Equal(0, cached.Flags & 2);
    }
}

public class TorchSharpSmokeTests
{
    [Fact]
    public void Convolution_forward_and_backward_run_and_match_a_finite_difference()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var conv = nn.Conv2d(1, 4, 3);
        var x = randn(2, 1, 8, 8, dtype: ScalarType.Float64);
        conv.to(ScalarType.Float64);
        var y = conv.forward(x).pow(2).sum();
        y.backward();
        var grad = conv.weight!.grad!;
        Assert.Equal(new long[] { 4, 1, 3, 3 }, grad.shape);

        // d(sum(conv(x)^2))/dw[0,0,1,1] by central difference
        const double h = 1e-6;
        double Loss(double delta)
        {
            using var noGrad = no_grad();
            var w = conv.weight.clone();
            w[0, 0, 1, 1] = w[0, 0, 1, 1] + delta;
            return nn.functional.conv2d(x, w, conv.bias).pow(2).sum().item<double>();
        }
        var numeric = (Loss(h) - Loss(-h)) / (2 * h);
        Assert.Equal(numeric, grad[0, 0, 1, 1].item<double>(), 4);
    }
}
