namespace FerSharp.Evaluation;

/// <summary>
/// Two models' answers on the same faces, face by face. Two accuracies on one test set differ by chance as well
/// as by skill; what separates them is how many faces only one of them gets right. McNemar's exact test asks
/// whether those discordant faces split unevenly beyond what a fair coin would do.
/// </summary>
public sealed record PairedComparison(int Faces, int BothRight, int OnlyFirstRight, int OnlySecondRight, int BothWrong, int SameLabel)
{
    /// <summary>Two-sided exact McNemar p-value: a binomial test of the discordant faces against p = 1/2.</summary>
    public double McNemarP => ExactMcNemarP(OnlyFirstRight, OnlySecondRight);

    /// <summary>Compares two models' predicted classes against the truth, face by face (the three lists align).</summary>
    public static PairedComparison Of(IReadOnlyList<int> truth, IReadOnlyList<int> first, IReadOnlyList<int> second)
    {
        ArgumentNullException.ThrowIfNull(truth);
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.Count != truth.Count || second.Count != truth.Count)
        {
            throw new ArgumentException($"face-by-face comparison needs answers for the same faces ({truth.Count} labels, {first.Count} and {second.Count} predictions)");
        }
        int both = 0, onlyFirst = 0, onlySecond = 0, neither = 0, same = 0;
        for (var i = 0; i < truth.Count; i++)
        {
            var (a, b) = (first[i] == truth[i], second[i] == truth[i]);
            if (a && b) both++;
            else if (a) onlyFirst++;
            else if (b) onlySecond++;
            else neither++;
            if (first[i] == second[i]) same++;
        }
        return new PairedComparison(truth.Count, both, onlyFirst, onlySecond, neither, same);
    }

    /// <summary>
    /// min(1, 2·P(X ≤ min(b, c))) for X ~ Binomial(b + c, 1/2), summed in log space so that thousands of
    /// discordant faces do not underflow.
    /// </summary>
    public static double ExactMcNemarP(int onlyFirst, int onlySecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(onlyFirst);
        ArgumentOutOfRangeException.ThrowIfNegative(onlySecond);
        var n = onlyFirst + onlySecond;
        if (n == 0) return 1;
        var k = Math.Min(onlyFirst, onlySecond);
        var logHalfPowN = n * Math.Log(0.5);
        var logChoose = 0.0; // log C(n, 0)
        var tail = 0.0;
        for (var i = 0; i <= k; i++)
        {
            if (i > 0) logChoose += Math.Log(n - i + 1) - Math.Log(i);
            tail += Math.Exp(logChoose + logHalfPowN);
        }
        return Math.Min(1, 2 * tail);
    }
}
