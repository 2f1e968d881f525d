using System.Diagnostics;
using System.Text.Json;

using FerSharp.Inference;
using FerSharp.Server;

namespace FerSharp.Bench;

/// <summary>
/// Where a recognition request's time goes: the server's own steps (decode, detect, classify, JSON) timed one
/// after the other in this process, and what is left of a whole loopback request (HTTP, Kestrel, the client).
/// </summary>
internal static class RequestPath
{
    public sealed record StageTime(string Stage, double MedianMs, double? P90Ms, double Share);

    public static IReadOnlyList<StageTime> Measure(EmotionRecognizer recognizer, byte[] jpeg, int rounds, double requestP50Ms)
    {
        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var times = new List<double>[4];
        for (var k = 0; k < times.Length; k++) times[k] = [];
        for (var round = -5; round < rounds; round++)
        {
            var watch = Stopwatch.StartNew();
            using var image = EmotionRecognizer.Decode(jpeg, recognizer.Options.MaxImagePixels);
            var decode = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            var (boxes, finding) = recognizer.Locate(image);
            var detect = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            var faces = recognizer.Classify(image, boxes, recognizer.Options.Tta, finding);
            var classify = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            var body = JsonSerializer.SerializeToUtf8Bytes(new { faces = faces.Select(ApiFace.Of).ToList(), width = image.Width, height = image.Height, model = recognizer.Model.Metadata.Name }, json);
            var serialize = watch.Elapsed.TotalMilliseconds;
            if (round < 0 || body.Length == 0) continue;
            times[0].Add(decode);
            times[1].Add(detect);
            times[2].Add(classify);
            times[3].Add(serialize);
        }
        var names = new[] { "decode (JPEG)", "detect (BlazeFace, photo settings)", "crop + classify (1 thread)", "JSON" };
        var stages = new List<StageTime>();
        for (var k = 0; k < names.Length; k++)
        {
            var sorted = times[k].Order().ToArray();
            var median = Math.Round(Stats.Percentile(sorted, 50), 2);
            stages.Add(new StageTime(names[k], median, Math.Round(Stats.Percentile(sorted, 90), 2), median / requestP50Ms));
        }
        var rest = Math.Max(0, requestP50Ms - stages.Sum(s => s.MedianMs));
        stages.Add(new StageTime("the rest: HTTP, queueing, client (1-client p50 minus the stages)", Math.Round(rest, 2), null, rest / requestP50Ms));
        stages.Add(new StageTime("whole request, 1 client (p50)", requestP50Ms, null, 1));
        return stages;
    }
}
