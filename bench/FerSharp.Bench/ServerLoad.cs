using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

using FerSharp.Inference;
using FerSharp.Server;

namespace FerSharp.Bench;

/// <summary>
/// N concurrent clients posting one photo to a server on 127.0.0.1, for a bounded time and request count:
/// requests/s, latency percentiles, errors, and the process working set before and after.
/// </summary>
internal static class ServerLoad
{
    public sealed record Result(int Clients, int Requests, int Errors, double RequestsPerSecond, double P50Ms, double P95Ms, double P99Ms,
        double WorkingSetBeforeMb, double WorkingSetAfterMb, double PeakWorkingSetMb);

    public static async Task<List<Result>> RunAsync(EmotionRecognizer recognizer, byte[] jpeg, int[] clientCounts, TimeSpan duration, int maxRequests)
    {
        await using var app = FerServer.Build(new ServerOptions { Urls = "http://127.0.0.1:0", MaxQueuedInference = 64 }, recognizer, logging: _ => { });
        await app.StartAsync();
        var url = new Uri(new Uri(app.Urls.First()), "/api/v1/recognize");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        async Task<bool> PostOnce()
        {
            var content = new ByteArrayContent(jpeg);
            content.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
            using var response = await http.PostAsync(url, content);
            return response.IsSuccessStatusCode;
        }
        for (var i = 0; i < 3; i++) await PostOnce(); // warm-up

        var results = new List<Result>();
        foreach (var clients in clientCounts)
        {
            GC.Collect();
            var before = Process.GetCurrentProcess().WorkingSet64;
            var latencies = new List<double>();
            var errors = 0;
            var started = 0;
            var watch = Stopwatch.StartNew();
            long peak = before;
            var workers = Enumerable.Range(0, clients).Select(async _ =>
            {
                while (watch.Elapsed < duration && Interlocked.Increment(ref started) <= maxRequests)
                {
                    var t = Stopwatch.StartNew();
                    bool ok;
                    try { ok = await PostOnce(); }
                    catch (HttpRequestException) { ok = false; }
                    lock (latencies)
                    {
                        latencies.Add(t.Elapsed.TotalMilliseconds);
                        if (!ok) errors++;
                        peak = Math.Max(peak, Process.GetCurrentProcess().WorkingSet64);
                    }
                }
            }).ToArray();
            await Task.WhenAll(workers);
            var seconds = watch.Elapsed.TotalSeconds;
            var after = Process.GetCurrentProcess().WorkingSet64;
            var sorted = latencies.Order().ToArray();
            results.Add(new Result(clients, sorted.Length, errors, Math.Round(sorted.Length / seconds, 2),
                Math.Round(Stats.Percentile(sorted, 50), 1), Math.Round(Stats.Percentile(sorted, 95), 1), Math.Round(Stats.Percentile(sorted, 99), 1),
                Math.Round(before / 1e6, 1), Math.Round(after / 1e6, 1), Math.Round(peak / 1e6, 1)));
        }
        await app.StopAsync();
        return results;
    }

    public sealed record Overload(int Requests, int Refused, int RefusedWithRetryAfter, double RefusedMedianMs, double RefusedMaxMs, double AcceptedMedianMs);

    /// <summary>
    /// A burst of simultaneous requests to a server that runs one recognition at a time and queues none: how
    /// many are refused with 503, whether each says Retry-After, and how fast the refusals come.
    /// </summary>
    public static async Task<Overload> OverloadAsync(EmotionRecognizer recognizer, byte[] jpeg, int burst, int rounds)
    {
        await using var app = FerServer.Build(new ServerOptions { Urls = "http://127.0.0.1:0", MaxConcurrentInference = 1, MaxQueuedInference = 0 }, recognizer, logging: _ => { });
        await app.StartAsync();
        var url = new Uri(new Uri(app.Urls.First()), "/api/v1/recognize");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        async Task<(HttpStatusCode Status, bool RetryAfter, double Ms)> PostOnce()
        {
            var content = new ByteArrayContent(jpeg);
            content.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
            var t = Stopwatch.StartNew();
            using var response = await http.PostAsync(url, content);
            return (response.StatusCode, response.Headers.RetryAfter is not null, t.Elapsed.TotalMilliseconds);
        }
        for (var i = 0; i < 3; i++) await PostOnce(); // warm-up
        var answers = new List<(HttpStatusCode Status, bool RetryAfter, double Ms)>();
        for (var r = 0; r < rounds; r++)
        {
            answers.AddRange(await Task.WhenAll(Enumerable.Range(0, burst).Select(_ => PostOnce())));
        }
        await app.StopAsync();
        var refused = answers.Where(a => a.Status == HttpStatusCode.ServiceUnavailable).Select(a => a.Ms).Order().ToArray();
        var accepted = answers.Where(a => a.Status == HttpStatusCode.OK).Select(a => a.Ms).Order().ToArray();
        return new Overload(answers.Count, refused.Length, answers.Count(a => a.Status == HttpStatusCode.ServiceUnavailable && a.RetryAfter),
            refused.Length == 0 ? 0 : Math.Round(Stats.Percentile(refused, 50), 2), refused.Length == 0 ? 0 : Math.Round(refused[^1], 2),
            accepted.Length == 0 ? 0 : Math.Round(Stats.Percentile(accepted, 50), 2));
    }
}
