using Prometheus;

namespace FerSharp.Server;

/// <summary>
/// What <c>GET /metrics</c> exposes beside prometheus-net's HTTP request counts and latency histograms (by
/// endpoint, method and status): faces per recognition, detector and classifier time, the recognition queue,
/// refused requests, the model and engine as labels, and the process's memory, threads and garbage collections
/// (prometheus-net's <c>process_*</c> and <c>dotnet_*</c> series). One registry per server, so two servers in one
/// process (tests) do not share counters.
/// </summary>
public sealed class ServerMetrics
{
    public ServerMetrics(string model, string engine)
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        var factory = Metrics.WithCustomRegistry(Registry);
        Faces = factory.CreateHistogram("fersharp_faces_per_recognition", "Faces found per recognized image or frame.",
            new HistogramConfiguration { Buckets = [0, 1, 2, 3, 5, 8, 13, 21, 34] });
        var seconds = Histogram.ExponentialBuckets(0.001, 2, 14);
        DetectorSeconds = factory.CreateHistogram("fersharp_detector_seconds", "Time to find the faces of one image or frame.",
            new HistogramConfiguration { Buckets = seconds });
        ClassifierSeconds = factory.CreateHistogram("fersharp_classifier_seconds", "Time to classify the faces of one image or frame.",
            new HistogramConfiguration { Buckets = seconds });
        Queue = factory.CreateGauge("fersharp_recognitions_waiting", "Recognitions waiting for a slot.");
        Running = factory.CreateGauge("fersharp_recognitions_running", "Recognitions running now.");
        Rejected = factory.CreateCounter("fersharp_rejected_total", "Requests refused: busy (503), unauthorized (401).",
            new CounterConfiguration { LabelNames = ["reason"] });
        var info = factory.CreateGauge("fersharp_model_info", "The model in use and its engine (value 1).",
            new GaugeConfiguration { LabelNames = ["model", "engine"] });
        info.WithLabels(model, engine).Set(1);
    }

    public CollectorRegistry Registry { get; }
    public Histogram Faces { get; }
    public Histogram DetectorSeconds { get; }
    public Histogram ClassifierSeconds { get; }
    public Gauge Queue { get; }
    public Gauge Running { get; }
    public Counter Rejected { get; }
}
