using System.Diagnostics;

namespace FerSharp.Models;

/// <summary>
/// How <see cref="InferenceEngine.Auto"/> chose: the median milliseconds per call of each engine on one face
/// (batch 1, flip averaging as the package has it, pre-processing and softmax included), timed on this machine
/// when the model first predicted.
/// </summary>
/// <param name="OpenCvMs">Median ms per face on OpenCV's DNN module.</param>
/// <param name="TorchSharpMs">Median ms per face on libtorch, batch norms folded.</param>
/// <param name="Rounds">Timed calls per engine (the fewer, if one engine got more within the budget).</param>
public sealed record EngineTiming(double OpenCvMs, double TorchSharpMs, int Rounds)
{
    /// <summary>Calls per engine before timing it: the first ones allocate buffers and pick kernels.</summary>
    internal const int WarmupCalls = 3;

    /// <summary>The engine with the lower median (OpenCV on a tie: it needs no libtorch around the network).</summary>
    public InferenceEngine Faster => OpenCvMs <= TorchSharpMs ? InferenceEngine.OpenCv : InferenceEngine.TorchSharp;

    /// <summary>Read from <see cref="EngineChoiceCache"/>: timed by an earlier run on this machine, not now.</summary>
    public bool Remembered { get; init; }

    public override string ToString() =>
        FormattableString.Invariant($"OpenCv {OpenCvMs:F2} ms per face, TorchSharp {TorchSharpMs:F2} ms (medians of {Rounds} calls{(Remembered ? ", timed by an earlier run on this machine" : "")})");

    /// <summary>
    /// Times one engine, then the other: each warmed up, then called at least <paramref name="minRounds"/> times
    /// and on until its half of <paramref name="budget"/> is spent or <paramref name="maxRounds"/> reached. The
    /// faster engine of a small network is known within tens of milliseconds; a large one costs a fraction of a
    /// second at load. Not interleaved: each engine's worker threads keep spinning for a moment after a call,
    /// and alternating calls made each engine pay for the other's (OpenCV's median for fer2013-realtime
    /// went from 0.7 to 1.3 ms on the AVX-512 host, docs/BENCHMARKS.md), which using one engine never does.
    /// </summary>
    internal static EngineTiming Measure(Action openCv, Action torchSharp, TimeSpan budget, int minRounds = 5, int maxRounds = 25)
    {
        ArgumentNullException.ThrowIfNull(openCv);
        ArgumentNullException.ThrowIfNull(torchSharp);
        ArgumentOutOfRangeException.ThrowIfLessThan(minRounds, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRounds, minRounds);
        var openCvMs = TimeOne(openCv, budget / 2, minRounds, maxRounds);
        var torchSharpMs = TimeOne(torchSharp, budget / 2, minRounds, maxRounds);
        return new EngineTiming(openCvMs.Median, torchSharpMs.Median, Math.Min(openCvMs.Rounds, torchSharpMs.Rounds));
    }

    private static (double Median, int Rounds) TimeOne(Action call, TimeSpan budget, int minRounds, int maxRounds)
    {
        for (var i = 0; i < WarmupCalls; i++) call();
        var ms = new List<double>();
        var start = Stopwatch.GetTimestamp();
        while (ms.Count < maxRounds && (ms.Count < minRounds || Stopwatch.GetElapsedTime(start) < budget))
        {
            ms.Add(Time(call));
        }
        return (Median(ms), ms.Count);
    }

    private static double Time(Action call)
    {
        var start = Stopwatch.GetTimestamp();
        call();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        var middle = values.Count / 2;
        return values.Count % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
    }
}
