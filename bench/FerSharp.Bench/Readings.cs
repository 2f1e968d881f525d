namespace FerSharp.Bench;

/// <summary>
/// How to read each table of docs/BENCHMARKS.md: one paragraph per section, found by the start of its title.
/// They say what a table measures and what to compare, never its numbers, so they cannot go stale.
/// </summary>
internal static class Readings
{
    private static readonly (string TitleStart, string Text)[] All =
    [
        ("Training throughput (synthetic", "Images per second through a training step on synthetic batches, and the share of the CPU's float32 peak it reaches: what bounds an epoch of `fer train`. Larger networks use the CPU better; compare architectures within this table, not with other machines."),
        ("Inference throughput", "Images per second of the network alone on libtorch at large batches, as `fer evaluate` runs it."),
        ("Training throughput by precision", "The same step in float32 and bfloat16 (`--precision BFloat16`). bfloat16 pays only where the CPU has native bfloat16 arithmetic (the header says whether it has); elsewhere libtorch emulates it."),
        ("Training throughput by memory layout", "The same step with NCHW and NHWC tensors (`--memory-format ChannelsLast`); the ratio between the two columns is what to read."),
        ("Per-face classification latency", "One 48x48 face per call, the whole call (views, network, softmax) as a recognizer runs it, for each shipped package on each engine. ONNX Runtime (one thread per call, so concurrent requests each get a core; two threads for one photo at a time) is what recognition uses; the libtorch columns are what training and `fer evaluate` use. A flip-averaging package runs two views per face."),
        ("Architecture latency", "Every registered architecture untrained, network forward only: the cost of a design before it is trained."),
        ("Peak memory of training", "Peak resident memory of a real `fer train` process for one short epoch: the data in memory, the network, the optimizer and augmentation."),
        ("Accuracy of the shipped models on FER+", "Every package on the FER+ test set (FER2013's PrivateTest faces relabelled by ten crowd votes each; majority rule, the headline FER+ figure): 8-class packages on all eight classes, every package on the seven classes it shares with FER2013 (contempt faces left out). FER+ labels are cleaner than FER2013's, so the same faces score higher; compare models within a column."),
        ("Accuracy of the shipped models on FER2013", "Each 7-class package on FER2013's original pixels (`fer2013.csv.gz`), PrivateTest and PublicTest, one view and with test-time augmentation: the numbers `fer evaluate` prints and the model cards quote."),
        ("Peers on the same faces", "Our packages and the peers' expression networks (face-api.js's FaceExpressionNet, human's mini-Xception), each with its own preprocessing, on the same faces: FER2013 PrivateTest with its labels, and the FER+ test set's majority labels over the 7 classes all share (contempt left out). Recall per class shows what accuracy hides; latency is one face per call on ONNX Runtime with one thread, the networks timed in turn over ten rounds so that the machine's drift falls on all alike."),
        ("Face detector: recall and speed", "Share of pasted faces found (IoU at least 0.4) in 640x480 scenes: upright, turned, small; boxes that are not the face; time per scene. BlazeFace with photo settings is what `fer predict` and uploads use (its look at 512 only when hinted), the row after it with that look always made, video settings what `fer video` uses."),
        ("Face detector in video", "Faces moving through short clips: found per frame when followed from frame to frame (`fer video`, the server's stream) against each frame seen alone, and the time per frame."),
        ("Face detector: boxes found in the photos", "Boxes found in a folder of real photos with few faces: false detections, by image."),
        ("Photo pipeline", "A photo's recognition with decoding excluded: detection (all of BlazeFace's looks) and crop + classify of each face, for one and five faces at two sizes, with the network on one thread per call (as the server runs each request) and on every core (`fer predict`, `fer video`). The look at 512 starts beside the look at 256 and is kept only when that one hints at smaller faces (docs/decisions/0022-hinted-look-at-512.md): a photo of one large face on a plain background costs the look at 256; the five faces of 640x480 ask for the look at 512, and the 1920x1080 photos' faces are large, so the look at 1024 is not made (docs/decisions/0021-hinted-finer-looks.md)."),
        ("Face detector on a group photo", "Small faces are what BlazeFace's look at 1024 is for: faces found and detection time with that look (and the look at 512) made only when the look before hints at smaller faces (the default), always made, and left out."),
        ("Video end to end", "Frames per second of `fer video` on a generated MJPEG clip: decode, detect with the fast settings (faces followed between full looks), classify, track."),
        ("Server request path", "Where one request's time goes: decoding the JPEG, finding the face, cropping and classifying it (one thread, as the server runs each request) and writing the JSON, each timed in the process; the rest of a whole loopback request at one client is HTTP, Kestrel and the client. Detection is most of it, so it is where a faster server must gain."),
        ("Server under load", "Loopback clients posting one 640x480 JPEG with a face, for a fixed time: throughput and latency percentiles. The server runs inside the bench process, so its working set holds every other section's models too; a `fer serve` process's own memory is in the soak table. Past the number of cores, more clients only queue (up to `--max-queue`, then 503)."),
        ("Server overload", "What a saturated server does with more requests than it may run or queue: they are refused at once with 503 and Retry-After instead of waiting; the refusal time is what a client waits to learn it should retry."),
        ("Server soak", "A real `fer serve` process under thousands of mixed requests, one in five bad (garbage, a truncated JPEG, nothing, a wrong content type, a PNG declaring 900 megapixels): every good request must get 200 and every bad one a 4xx, and resident memory after the soak should stay within about 10 % of its level after warm-up."),
        ("TorchSharp temporary scalars", "Failed or wrong libtorch calls when a garbage collection runs during them, with and without the optimizing JIT and with held scalars (docs/decisions/0003-torchsharp-scalar-lifetime.md): why programs that train set `DOTNET_JITMinOpts=1`."),
    ];

    public static string? For(string title) => All.FirstOrDefault(r => title.StartsWith(r.TitleStart, StringComparison.Ordinal)).Text;
}
