using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;

namespace FerSharp.Bench;

/// <summary>
/// A bounded soak of a real <c>fer serve</c> process on loopback: a warm-up of 200 requests, then thousands of mixed requests,
/// some of them bad, from a few clients. Good requests must all be answered 200 and bad ones 4xx; the server's
/// resident memory is read from /proc after the warm-up and after the soak.
/// </summary>
internal static class ServerSoak
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(3);

    public sealed record Result(int Requests, int Good, int GoodFailures, int Bad, int BadAnsweredWrongly, double Seconds,
        double ResidentAfterWarmUpMb, double ResidentAfterMb, double PeakResidentMb, double ManagedAfterWarmUpMb, double ManagedAfterMb,
        IReadOnlyList<string> Unexpected);

    public static async Task<Result> RunAsync(string cli, string model, byte[] goodJpeg, int requests, int clients)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { cli, "serve", "--urls", "http://127.0.0.1:0", "-m", model, "--log-format", "text" }) info.ArgumentList.Add(arg);
        info.Environment.Remove("DOTNET_JITMinOpts");
        info.Environment.Remove("GLIBC_TUNABLES");
        info.Environment["NO_COLOR"] = "1";
        using var server = Process.Start(info) ?? throw new InvalidOperationException("cannot start fer serve");
        try
        {
            var address = await AddressAsync(server);
            using var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
            var bad = BadBodies(goodJpeg);
            // The warm-up is the soak's own mix, from the same number of clients, so every path has run before the
            // level is read.
            var warm = -1;
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
            {
                int w;
                while ((w = Interlocked.Increment(ref warm)) < 200)
                {
                    if (w % 5 == 4) await PostAsync(http, bad[w / 5 % bad.Count].Body, bad[w / 5 % bad.Count].Type);
                    else await PostAsync(http, goodJpeg, "image/jpeg");
                }
            }));
            // Both levels are read once the server has been idle a moment, as an operator would see them between bursts.
            await Task.Delay(Quiet);
            var afterWarmUp = ResidentMb(server.Id);
            var managedAfterWarmUp = await ManagedMbAsync(http);
            var unexpected = new System.Collections.Concurrent.ConcurrentBag<string>();
            var good = 0;
            var goodFailures = 0;
            var badCount = 0;
            var badWrong = 0;
            var peak = afterWarmUp;
            var next = -1;
            var watch = Stopwatch.StartNew();
            var workers = Enumerable.Range(0, clients).Select(async _ =>
            {
                int n;
                while ((n = Interlocked.Increment(ref next)) < requests)
                {
                    // One request in five is bad, of each kind in turn.
                    if (n % 5 == 4)
                    {
                        var (body, type) = bad[n / 5 % bad.Count];
                        var status = await PostAsync(http, body, type);
                        Interlocked.Increment(ref badCount);
                        if ((int)status is < 400 or >= 500)
                        {
                            Interlocked.Increment(ref badWrong);
                            unexpected.Add($"bad body {n / 5 % bad.Count}: {(int)status}");
                        }
                    }
                    else
                    {
                        var status = await PostAsync(http, goodJpeg, "image/jpeg");
                        Interlocked.Increment(ref good);
                        if (status != HttpStatusCode.OK)
                        {
                            Interlocked.Increment(ref goodFailures);
                            unexpected.Add($"good request {n}: {(int)status}");
                        }
                    }
                    if (n % 100 == 0) lock (bad) peak = Math.Max(peak, ResidentMb(server.Id));
                }
            }).ToArray();
            await Task.WhenAll(workers);
            var seconds = watch.Elapsed.TotalSeconds;
            await Task.Delay(Quiet);
            var after = ResidentMb(server.Id);
            return new Result(requests, good, goodFailures, badCount, badWrong, Math.Round(seconds, 1), afterWarmUp, after, peak,
                managedAfterWarmUp, await ManagedMbAsync(http), [.. unexpected]);
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
            server.WaitForExit();
        }
    }

    /// <summary>Requests the server must refuse with a 4xx: garbage, a truncated JPEG, nothing, a wrong type, a PNG declaring 30000x30000 pixels.</summary>
    private static List<(byte[] Body, string Type)> BadBodies(byte[] jpeg)
    {
        var random = new Random(5);
        var garbage = new byte[4096];
        random.NextBytes(garbage);
        var bomb = new byte[33];
        new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52 }.CopyTo(bomb, 0);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bomb.AsSpan(16), 30000); // width
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bomb.AsSpan(20), 30000); // height
        bomb[24] = 8;
        bomb[25] = 2;
        return [(garbage, "image/jpeg"), (jpeg[..(jpeg.Length / 3)], "image/jpeg"), ([], "image/png"), (jpeg, "text/plain"), (bomb, "image/png")];
    }

    private static async Task<HttpStatusCode> PostAsync(HttpClient http, byte[] body, string type)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        using var response = await http.PostAsync("/api/v1/recognize", content);
        return response.StatusCode;
    }

    private static async Task<Uri> AddressAsync(Process server)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (DateTime.UtcNow < deadline)
        {
            var line = await server.StandardOutput.ReadLineAsync();
            if (line is null) break;
            var at = line.IndexOf("http://127.0.0.1:", StringComparison.Ordinal);
            if (at >= 0 && line.Contains("serving on", StringComparison.Ordinal))
            {
                var end = line.IndexOfAny([' ', ','], at);
                _ = server.StandardOutput.ReadToEndAsync(); // keep the pipe drained
                _ = server.StandardError.ReadToEndAsync();
                return new Uri(end < 0 ? line[at..] : line[at..end]);
            }
        }
        throw new InvalidOperationException($"fer serve did not start: {await server.StandardError.ReadToEndAsync()}");
    }

    /// <summary>The server's managed heap (prometheus-net's <c>dotnet_total_memory_bytes</c>), to tell it from native memory.</summary>
    private static async Task<double> ManagedMbAsync(HttpClient http)
    {
        var text = await http.GetStringAsync("/metrics");
        var line = text.Split('\n').First(l => l.StartsWith("dotnet_total_memory_bytes ", StringComparison.Ordinal));
        return Math.Round(double.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture) / (1024 * 1024), 1);
    }

    private static double ResidentMb(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return Math.Round(long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0, 1);
    }
}
