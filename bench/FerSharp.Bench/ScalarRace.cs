using System.Diagnostics;
using System.Runtime.InteropServices;

using FerSharp.Models;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Bench;

/// <summary>
/// Measures how often a libtorch call fails when TorchSharp's temporary scalar is freed during the call
/// (see <see cref="HeldScalars"/>): one thread adds 1 to a counter tensor while another allocates, which
/// starts garbage collections at any moment. Run once as the launchers do (DOTNET_JITMinOpts=1) and once with
/// DOTNET_JITMinOpts=0 to see the hazard itself.
/// </summary>
internal static class ScalarRace
{
    public sealed record Result(string Variant, long Calls, long Errors, long WrongCounts);

    public static IReadOnlyList<Result> Run(TimeSpan perVariant) =>
    [
        Measure("temporary scalar: t.add_(1)", perVariant, counter => counter.add_(1)),
        Measure("held scalar (HeldScalars)", perVariant, counter => counter.AddTensorInPlace(ones_like(counter))),
    ];

    private static Result Measure(string variant, TimeSpan duration, Func<Tensor, Tensor> increment)
    {
        using var counter = tensor(0L);
        var stop = false;
        var pressure = new Thread(() =>
        {
            var keep = new List<byte[]>();
            while (!Volatile.Read(ref stop))
            {
                keep.Add(new byte[1000]);
                if (keep.Count > 1000) keep.Clear();
            }
        });
        pressure.Start();
        long calls = 0, errors = 0;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < duration)
        {
            using var scope = NewDisposeScope();
            try
            {
                increment(counter);
                calls++;
            }
            catch (Exception e) when (e is ExternalException or InvalidOperationException or ArgumentException)
            {
                errors++;
            }
        }
        Volatile.Write(ref stop, true);
        pressure.Join();
        // A freed scalar can also be read as a different number without an error.
        return new Result(variant, calls, errors, Math.Abs(counter.item<long>() - calls));
    }
}
