using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Inference;
using FerSharp.Models;
using FerSharp.Server;

using Microsoft.AspNetCore.Builder;
using Microsoft.Playwright;

using OpenCvSharp;

namespace FerSharp.Tests;

/// <summary>A real server on a free loopback port, shared by the tests of a class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const long BodyLimit = 1024 * 1024;
    private WebApplication? _app;

    // The float network, so that answers compare within 1e-3 with a server on another engine.
    public EmotionRecognizer Recognizer { get; } = EmotionRecognizer.Load(null, null, new ClassifierOptions { Precision = NetworkPrecision.Float });
    public Uri BaseUri { get; private set; } = null!;
    // A long 100-continue wait: large uploads ask first, so a refused body is never sent into a closed socket.
    public HttpClient Http { get; } = new(new SocketsHttpHandler { Expect100ContinueTimeout = TimeSpan.FromSeconds(30) }) { Timeout = TimeSpan.FromMinutes(2) };

    public async Task InitializeAsync()
    {
        _app = FerServer.Build(new ServerOptions { Urls = "http://127.0.0.1:0", MaxBodyBytes = BodyLimit }, Recognizer, logging: _ => { });
        await _app.StartAsync();
        BaseUri = new Uri(_app.Urls.First());
    }

    public async Task DisposeAsync()
    {
        if (_app != null) await _app.DisposeAsync();
        Http.Dispose();
        Recognizer.Dispose();
    }
}

[Collection("torch")]
public class ServerTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private Uri Url(string path) => new(server.BaseUri, path);

    private static byte[] FacePng() => FaceImages.EncodePng(Synthetic.Patterns(1, seed: 3).Face(2));

    private static void AssertFaceSchema(JsonElement face)
    {
        var box = face.GetProperty("box");
        foreach (var key in new[] { "x", "y", "width", "height" }) Assert.Equal(JsonValueKind.Number, box.GetProperty(key).ValueKind);
        var probabilities = face.GetProperty("probabilities").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
        Assert.Equal(EmotionClasses.Fer2013.Order(), probabilities.Keys.Order());
        Assert.Equal(probabilities.MaxBy(p => p.Value).Key, face.GetProperty("emotion").GetString());
        Assert.Equal(probabilities.Values.Max(), face.GetProperty("confidence").GetDouble(), 3);
    }

    [Fact]
    public async Task Health_and_model_info()
    {
        var health = await server.Http.GetAsync(Url("/healthz"));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Contains("ok", await health.Content.ReadAsStringAsync());
        using var model = JsonDocument.Parse(await server.Http.GetStringAsync(Url("/api/v1/model")));
        Assert.Equal(server.Recognizer.Model.Metadata.Name, model.RootElement.GetProperty("name").GetString());
        Assert.Equal(7, model.RootElement.GetProperty("classes").GetArrayLength());
        Assert.Equal(48, model.RootElement.GetProperty("input_size")[2].GetInt32());
        Assert.Equal("OnnxRuntime", model.RootElement.GetProperty("engine").GetString());
        Assert.Equal("float", model.RootElement.GetProperty("precision").GetString());
        var recognition = model.RootElement.GetProperty("recognition");
        Assert.Equal("BlazeFace", recognition.GetProperty("detector").GetString());
        Assert.Equal(new BlazeFaceOptions().MaxSide, recognition.GetProperty("max_look").GetInt32());
        Assert.Equal(server.Recognizer.Options.Margin, recognition.GetProperty("margin").GetDouble());
        Assert.Equal("none", recognition.GetProperty("tta").GetString());
        var openapi = await server.Http.GetStringAsync(Url("/openapi/v1.json"));
        Assert.Contains("/api/v1/recognize", openapi);
        var page = await server.Http.GetStringAsync(Url("/"));
        Assert.Contains("<script src=\"/app.js\">", page);
        Assert.DoesNotContain("http://cdn", page + await server.Http.GetStringAsync(Url("/app.js")), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The OpenAPI document describes what the server really answers: the recognize call's body, query and
    /// error statuses, and response schemas whose properties are exactly those of a real answer.
    /// </summary>
    [Fact]
    public async Task The_OpenAPI_document_matches_the_real_responses()
    {
        using var document = JsonDocument.Parse(await server.Http.GetStringAsync(Url("/openapi/v1.json")));
        var root = document.RootElement;
        var recognize = root.GetProperty("paths").GetProperty("/api/v1/recognize").GetProperty("post");
        var body = recognize.GetProperty("requestBody").GetProperty("content");
        Assert.True(body.TryGetProperty("multipart/form-data", out var multipart));
        Assert.Contains("image", multipart.GetProperty("schema").GetProperty("required").EnumerateArray().Select(e => e.GetString()));
        Assert.True(body.TryGetProperty("image/*", out _));
        var tta = Assert.Single(recognize.GetProperty("parameters").EnumerateArray(), p => p.GetProperty("name").GetString() == "tta");
        Assert.Equal(["none", "flip", "crops"], tta.GetProperty("schema").GetProperty("enum").EnumerateArray().Select(e => e.GetString()));
        var responses = recognize.GetProperty("responses");
        foreach (var status in new[] { "200", "400", "401", "413", "415", "503", "504" })
        {
            Assert.True(responses.TryGetProperty(status, out var response), $"status {status} is not documented");
            Assert.False(string.IsNullOrWhiteSpace(response.GetProperty("description").GetString()), $"status {status} has no description");
        }
        var stream = root.GetProperty("paths").GetProperty("/api/v1/stream").GetProperty("get");
        Assert.Contains("binary message", stream.GetProperty("description").GetString());

        // Each schema's properties against a real answer's keys.
        var schemas = root.GetProperty("components").GetProperty("schemas");
        HashSet<string> Properties(JsonElement response)
        {
            var schema = response.GetProperty("content").GetProperty("application/json").GetProperty("schema");
            var name = schema.GetProperty("$ref").GetString()!.Split('/')[^1];
            return schemas.GetProperty(name).GetProperty("properties").EnumerateObject().Select(p => p.Name).ToHashSet();
        }
        HashSet<string> Keys(JsonElement element) => element.EnumerateObject().Select(p => p.Name).ToHashSet();
        var ok = await server.Http.PostAsync(Url("/api/v1/recognize"), new ByteArrayContent(FacePng()) { Headers = { ContentType = new MediaTypeHeaderValue("image/png") } });
        using var answer = JsonDocument.Parse(await ok.Content.ReadAsStringAsync());
        Assert.Equal(Properties(responses.GetProperty("200")), Keys(answer.RootElement));
        var face = Assert.Single(answer.RootElement.GetProperty("faces").EnumerateArray());
        var faceSchema = schemas.EnumerateObject().Single(s => s.Value.TryGetProperty("properties", out var p) && p.TryGetProperty("detector_score", out _));
        Assert.Equal(faceSchema.Value.GetProperty("properties").EnumerateObject().Select(p => p.Name).ToHashSet(), Keys(face));
        var bad = await server.Http.PostAsync(Url("/api/v1/recognize?tta=twice"), new ByteArrayContent(FacePng()) { Headers = { ContentType = new MediaTypeHeaderValue("image/png") } });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        using var error = JsonDocument.Parse(await bad.Content.ReadAsStringAsync());
        Assert.Equal(Properties(responses.GetProperty("400")), Keys(error.RootElement));
    }

    [Fact]
    public async Task Recognize_takes_multipart_or_a_raw_image_body()
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(FacePng());
        file.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        form.Add(file, "image", "face.png");
        var multipart = await server.Http.PostAsync(Url("/api/v1/recognize"), form);
        Assert.Equal(HttpStatusCode.OK, multipart.StatusCode);
        using var a = JsonDocument.Parse(await multipart.Content.ReadAsStringAsync());
        AssertFaceSchema(Assert.Single(a.RootElement.GetProperty("faces").EnumerateArray()));

        var raw = new ByteArrayContent(FacePng());
        raw.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        var response = await server.Http.PostAsync(Url("/api/v1/recognize"), raw);
        using var b = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(a.RootElement.GetProperty("faces")[0].GetProperty("probabilities").GetRawText(),
            b.RootElement.GetProperty("faces")[0].GetProperty("probabilities").GetRawText());

        // ?tta=crops answers what the recognizer's ten-crop classification of the same image does.
        var crops = new ByteArrayContent(FacePng());
        crops.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        var averaged = await server.Http.PostAsync(Url("/api/v1/recognize?tta=Crops"), crops);
        Assert.Equal(HttpStatusCode.OK, averaged.StatusCode);
        using var c = JsonDocument.Parse(await averaged.Content.ReadAsStringAsync());
        using var image = EmotionRecognizer.Decode(FacePng());
        var expected = Assert.Single(server.Recognizer.Recognize(image, TtaMode.Crops));
        var face = Assert.Single(c.RootElement.GetProperty("faces").EnumerateArray());
        AssertFaceSchema(face);
        Assert.Equal(expected.Confidence, face.GetProperty("confidence").GetDouble(), 3);
        Assert.NotEqual(a.RootElement.GetProperty("faces")[0].GetProperty("probabilities").GetRawText(), face.GetProperty("probabilities").GetRawText());
    }

    [SharedDataFact]
    public async Task Recognize_finds_the_faces_of_a_photo_built_from_FER2013_faces()
    {
        var (image, truth) = FaceCanvas.Build([0, 1, 2], 900, 400, 150);
        byte[] jpeg;
        using (image) jpeg = image.ImEncode(".jpg");
        var body = new ByteArrayContent(jpeg);
        body.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        var response = await server.Http.PostAsync(Url("/api/v1/recognize"), body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var faces = json.RootElement.GetProperty("faces").EnumerateArray().ToList();
        Assert.True(faces.Count >= 2, $"{faces.Count} faces");
        Assert.All(faces, AssertFaceSchema);
        Assert.Equal(900, json.RootElement.GetProperty("width").GetInt32());
    }

    private static async Task<int> StreamedFaceCount(Uri baseUri, byte[] jpeg)
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new UriBuilder(baseUri) { Scheme = "ws", Path = "/api/v1/stream" }.Uri, CancellationToken.None);
        await socket.SendAsync(jpeg, WebSocketMessageType.Binary, true, CancellationToken.None);
        var buffer = new byte[1 << 16];
        var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
        using var reply = JsonDocument.Parse(buffer.AsMemory(0, result.Count));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        return reply.RootElement.GetProperty("faces").GetArrayLength();
    }

    [SharedDataFact]
    public async Task Stream_frames_go_through_the_stream_detector_settings()
    {
        var (image, _) = FaceCanvas.Build([0, 1, 2], 640, 480, 150);
        byte[] jpeg;
        using (image) jpeg = image.ImEncode(".jpg");
        var upload = new ByteArrayContent(jpeg);
        upload.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        using var uploaded = JsonDocument.Parse(await (await server.Http.PostAsync(Url("/api/v1/recognize"), upload)).Content.ReadAsStringAsync());
        var uploadFaces = uploaded.RootElement.GetProperty("faces").GetArrayLength();
        Assert.True(uploadFaces >= 2, $"{uploadFaces} faces in the upload");
        // The live stream finds what the fast detector settings, following faces, find in a stream's first frame.
        using (var fast = new BlazeFaceDetector(BlazeFaceOptions.Video))
        using (var decoded = Cv2.ImDecode(jpeg, ImreadModes.Color))
        {
            var fastFaces = new FaceFollower(fast).Find(decoded).Count;
            Assert.True(fastFaces >= 1, "the fast settings find no face in the frame");
            Assert.Equal(fastFaces, await StreamedFaceCount(server.BaseUri, jpeg));
        }

        // Stream detectors that find no face in it (faces filling the frame; near-certain scores) show the
        // stream really uses the settings given for it.
        foreach (var options in new[]
        {
            new ServerOptions { Urls = "http://127.0.0.1:0", Recognition = new RecognizerOptions { DetectorKind = FaceDetectorKind.Haar }, StreamDetector = new HaarDetectorOptions { MinFaceFraction = 0.95 } },
            new ServerOptions { Urls = "http://127.0.0.1:0", StreamBlazeFace = new BlazeFaceOptions { MinScore = 0.99999f } },
        })
        {
            await using var strict = FerServer.Build(options, server.Recognizer, logging: _ => { });
            await strict.StartAsync();
            Assert.Equal(0, await StreamedFaceCount(new Uri(strict.Urls.First()), jpeg));
        }
    }

    [Fact]
    public async Task Fer_serve_recognizes_uploads_with_its_detection_margin_and_tta_options()
    {
        using var process = Cli.Start("serve", "--urls", "http://127.0.0.1:0", "--engine", "OpenCv", "--max-look", "2048", "--margin", "0.25", "--tta", "crops");
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            string? line;
            Uri? address = null;
            while (address == null && (line = await process.StandardOutput.ReadLineAsync(timeout.Token)) != null)
            {
                if (line.StartsWith("serving on ", StringComparison.Ordinal)) address = new Uri(line["serving on ".Length..].Split(' ', ',')[0]);
            }
            Assert.True(address != null, $"fer serve did not start: {(process.HasExited ? await stderr : "")}");
            string? settings = null;
            while (settings == null && (line = await process.StandardOutput.ReadLineAsync(timeout.Token)) != null)
            {
                if (line.StartsWith("photos: ", StringComparison.Ordinal)) settings = line;
            }
            Assert.StartsWith("photos: BlazeFace up to 2048 px, margin 0.25, faces levelled by their eyes, ten crops per face", settings);

            using var model = JsonDocument.Parse(await server.Http.GetStringAsync(new Uri(address, "/api/v1/model")));
            var recognition = model.RootElement.GetProperty("recognition");
            Assert.Equal(2048, recognition.GetProperty("max_look").GetInt32());
            Assert.Equal(0.25, recognition.GetProperty("margin").GetDouble());
            Assert.True(recognition.GetProperty("level_faces").GetBoolean());
            Assert.Equal("crops", recognition.GetProperty("tta").GetString());

            // An upload without ?tta= gets the server's ten crops and margin: the answer of a recognizer set so.
            var body = new ByteArrayContent(FacePng());
            body.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            using var answer = JsonDocument.Parse(await (await server.Http.PostAsync(new Uri(address, "/api/v1/recognize"), body)).Content.ReadAsStringAsync());
            using var image = EmotionRecognizer.Decode(FacePng());
            var expected = Assert.Single(server.Recognizer.Recognize(image, TtaMode.Crops));
            // Within 1e-3, not to 3 places: this server runs the network on OpenCV, the fixture's as Auto chose.
            var confidence = Assert.Single(answer.RootElement.GetProperty("faces").EnumerateArray()).GetProperty("confidence").GetDouble();
            Assert.InRange(confidence, expected.Confidence - 1e-3, expected.Confidence + 1e-3);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Fact]
    public void Build_refuses_settings_out_of_range_naming_them_before_listening()
    {
        foreach (var (options, named) in new (ServerOptions, string)[]
        {
            (new() { Urls = "not a url" }, "--urls"),
            (new() { Urls = "http://127.0.0.1:0", MaxConcurrentInference = 0 }, "--max-concurrency"),
            (new() { Urls = "http://127.0.0.1:0", MaxQueuedInference = -1 }, "--max-queue"),
            (new() { Urls = "http://127.0.0.1:0", RequestTimeout = TimeSpan.Zero }, "--timeout"),
            (new() { Urls = "http://127.0.0.1:0", MaxBodyBytes = 0 }, "--max-body-mb"),
            (new() { Urls = "http://127.0.0.1:0", Recognition = new RecognizerOptions { Margin = double.NaN } }, "--margin"),
        })
        {
            var error = Assert.ThrowsAny<ArgumentException>(() => FerServer.Build(options, server.Recognizer, logging: _ => { }));
            Assert.Contains(named, error.Message);
        }
        // Kestrel's wildcard hosts are addresses too.
        new ServerOptions { Urls = "http://*:5080;http://+:5081;http://0.0.0.0:5082" }.Validate();
    }

    [Fact]
    public async Task Bad_requests_get_json_errors_with_the_right_status_and_no_stack_trace()
    {
        async Task<(HttpStatusCode Status, string Body)> Post(HttpContent content)
        {
            var r = await server.Http.PostAsync(Url("/api/v1/recognize"), content);
            return (r.StatusCode, await r.Content.ReadAsStringAsync());
        }
        // As a careful client does for large uploads, ask with Expect: 100-continue: the server answers 413
        // before the body is sent (sending it anyway races the server closing the connection: broken pipe).
        using var bigRequest = new HttpRequestMessage(HttpMethod.Post, Url("/api/v1/recognize")) { Content = new ByteArrayContent(new byte[ServerFixture.BodyLimit + 1]) };
        bigRequest.Content.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        bigRequest.Headers.ExpectContinue = true;
        using var bigResponse = await server.Http.SendAsync(bigRequest);
        var tooLarge = (Status: bigResponse.StatusCode, Body: await bigResponse.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.Status);
        Assert.Contains("limit", JsonDocument.Parse(tooLarge.Body).RootElement.GetProperty("error").GetString());

        var text = await Post(new StringContent("hello", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, text.Status);

        var corrupt = new ByteArrayContent("not really a png"u8.ToArray());
        corrupt.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        var bad = await Post(corrupt);
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Contains("not a readable image", bad.Body);

        using var form = new MultipartFormDataContent { { new StringContent("x"), "other" } };
        var missing = await Post(form);
        Assert.Equal(HttpStatusCode.BadRequest, missing.Status);
        Assert.Contains("'image'", JsonDocument.Parse(missing.Body).RootElement.GetProperty("error").GetString());

        var unknownTta = new ByteArrayContent(FacePng());
        unknownTta.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        var tta = await server.Http.PostAsync(Url("/api/v1/recognize?tta=mirror"), unknownTta);
        Assert.Equal(HttpStatusCode.BadRequest, tta.StatusCode);
        Assert.Contains("'tta'", JsonDocument.Parse(await tta.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());

        var broken = new ByteArrayContent("--nope\r\n"u8.ToArray());
        broken.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data");
        var malformed = await Post(broken);
        Assert.Equal(HttpStatusCode.BadRequest, malformed.Status);

        foreach (var body in new[] { tooLarge.Body, text.Body, bad.Body, missing.Body, malformed.Body })
        {
            Assert.DoesNotContain("   at ", body);
            Assert.Equal(JsonValueKind.String, JsonDocument.Parse(body).RootElement.GetProperty("error").ValueKind);
        }
    }

    [Fact]
    public async Task WebSocket_stream_answers_each_frame()
    {
        using var socket = new ClientWebSocket();
        var ws = new UriBuilder(server.BaseUri) { Scheme = "ws", Path = "/api/v1/stream" }.Uri;
        await socket.ConnectAsync(ws, CancellationToken.None);
        async Task<JsonElement> Exchange(byte[] payload, WebSocketMessageType type)
        {
            await socket.SendAsync(payload, type, true, CancellationToken.None);
            var buffer = new byte[1 << 16];
            var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
            Assert.True(result.EndOfMessage);
            return JsonDocument.Parse(buffer.AsMemory(0, result.Count)).RootElement.Clone();
        }
        for (var i = 0; i < 3; i++)
        {
            var reply = await Exchange(FacePng(), WebSocketMessageType.Binary);
            AssertFaceSchema(Assert.Single(reply.GetProperty("faces").EnumerateArray()));
        }
        var error = await Exchange("hello"u8.ToArray(), WebSocketMessageType.Text);
        Assert.Contains("binary", error.GetProperty("error").GetString());
        var corrupt = await Exchange("nope"u8.ToArray(), WebSocketMessageType.Binary);
        Assert.Contains("not a readable image", corrupt.GetProperty("error").GetString());
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }

    [Fact]
    public async Task WebSocket_stream_tracks_each_face_and_smooths_its_probabilities_over_frames()
    {
        var faceA = FacePng();
        var faceB = FaceImages.EncodePng(Synthetic.Patterns(1, seed: 3).Face(5));
        async Task<Dictionary<string, double>> Single(byte[] png)
        {
            var body = new ByteArrayContent(png);
            body.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            using var json = JsonDocument.Parse(await (await server.Http.PostAsync(Url("/api/v1/recognize"), body)).Content.ReadAsStringAsync());
            return Probabilities(Assert.Single(json.RootElement.GetProperty("faces").EnumerateArray()));
        }
        static Dictionary<string, double> Probabilities(JsonElement face) =>
            face.GetProperty("probabilities").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
        var a = await Single(faceA);
        var b = await Single(faceB);
        Assert.True(a.Keys.Max(k => Math.Abs(a[k] - b[k])) > 0.01, "the two test faces should get different answers");

        async Task<List<JsonElement>> Stream(string query, params byte[][] frames)
        {
            using var socket = new ClientWebSocket();
            await socket.ConnectAsync(new UriBuilder(server.BaseUri) { Scheme = "ws", Path = "/api/v1/stream", Query = query }.Uri, CancellationToken.None);
            var faces = new List<JsonElement>();
            foreach (var frame in frames)
            {
                await socket.SendAsync(frame, WebSocketMessageType.Binary, true, CancellationToken.None);
                var buffer = new byte[1 << 16];
                var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                using var reply = JsonDocument.Parse(buffer.AsMemory(0, result.Count));
                faces.Add(Assert.Single(reply.RootElement.GetProperty("faces").EnumerateArray()).Clone());
            }
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
            return faces;
        }

        // The same face box in both frames: one track, and the second answer leans on the first (0.6 by default).
        var smoothed = await Stream("", faceA, faceB);
        Assert.All(smoothed, f => Assert.Equal(1, f.GetProperty("id").GetInt32()));
        Assert.All(smoothed, AssertFaceSchema);
        var first = Probabilities(smoothed[0]);
        var second = Probabilities(smoothed[1]);
        foreach (var c in a.Keys)
        {
            // Each figure is rounded to 4 decimals on the wire.
            Assert.Equal(a[c], first[c], tolerance: 3e-4);
            Assert.Equal(0.6 * a[c] + 0.4 * b[c], second[c], tolerance: 3e-4);
        }
        // smooth=0: each frame's own answer; a new connection starts its ids again.
        var raw = await Stream("smooth=0", faceA, faceB);
        Assert.Equal(1, raw[1].GetProperty("id").GetInt32());
        foreach (var c in b.Keys) Assert.Equal(b[c], Probabilities(raw[1])[c], tolerance: 3e-4);

        foreach (var bad in new[] { "2", "-0.1", "NaN", "lots" })
        {
            var refused = await server.Http.GetAsync(Url($"/api/v1/stream?smooth={bad}"));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("'smooth'", JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        }
    }

    [Fact]
    public async Task The_gate_refuses_work_beyond_its_queue()
    {
        using var gate = new InferenceGate(concurrency: 1, maxQueued: 1);
        using var first = await gate.TryEnterAsync(CancellationToken.None);
        Assert.NotNull(first);
        var second = gate.TryEnterAsync(CancellationToken.None); // waits in the queue
        Assert.Null(await gate.TryEnterAsync(CancellationToken.None)); // queue full
        first!.Dispose();
        using var granted = await second;
        Assert.NotNull(granted);
    }

    [Fact]
    public async Task Memory_is_trimmed_only_when_no_recognition_runs_and_one_finished_since_the_last_trim()
    {
        using var gate = new InferenceGate(concurrency: 2, maxQueued: 0);
        using var trim = new IdleMemoryTrim(gate, Timeout.InfiniteTimeSpan);
        Assert.False(trim.TrimIfIdle()); // nothing ran yet
        var lease = await gate.TryEnterAsync(CancellationToken.None);
        Assert.Equal(1, gate.Running);
        Assert.False(trim.TrimIfIdle()); // a recognition holds a slot
        lease!.Dispose();
        lease.Dispose(); // a second release must not count twice
        Assert.Equal((0, 1L), (gate.Running, gate.Finished));
        Assert.Equal(OperatingSystem.IsLinux(), trim.TrimIfIdle());
        Assert.False(trim.TrimIfIdle()); // nothing new since
    }
}

/// <summary>The web page in Debian's Chromium, driven by Playwright, with a fake camera playing FER2013 faces.</summary>
[Collection("torch")]
public class WebPageTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static string WriteY4m(string path, int frames)
    {
        const int width = 640, height = 480;
        using var stream = File.Create(path);
        stream.Write(Encoding.ASCII.GetBytes($"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n"));
        for (var f = 0; f < frames; f++)
        {
            var (image, _) = FaceCanvas.Build([0, 1], width, height, 200, shiftX: f);
            using (image)
            using (var yuv = image.CvtColor(ColorConversionCodes.BGR2YUV_I420))
            {
                stream.Write("FRAME\n"u8);
                yuv.GetArray(out byte[] planes);
                stream.Write(planes);
            }
        }
        return path;
    }

    [SharedDataFact]
    public async Task Page_shows_live_expressions_from_the_camera_and_annotates_an_uploaded_photo()
    {
        Assert.True(File.Exists("/usr/bin/chromium"), "Debian chromium is needed (./test installs it)");
        using var dir = new TempDir();
        var y4m = WriteY4m(dir.File("camera.y4m"), 20);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                $"--use-file-for-fake-video-capture={y4m}",
            ],
        });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        await context.GrantPermissionsAsync(["camera"]);
        var page = await context.NewPageAsync();
        await page.GotoAsync(server.BaseUri.ToString());
        await page.WaitForSelectorAsync("#model-info:not(:text('loading model…'))");
        Assert.Contains(server.Recognizer.Model.Metadata.Name, await page.InnerTextAsync("#model-info"));
        Assert.Contains($"engine {server.Recognizer.Model.Engine}", await page.InnerTextAsync("#model-info"));
        Assert.Contains($"photos: BlazeFace up to {new BlazeFaceOptions().MaxSide} px", await page.InnerTextAsync("#model-info"));

        await page.ClickAsync("#start-camera");
        var live = await page.WaitForSelectorAsync("#live-faces .face-label", new PageWaitForSelectorOptions { Timeout = 60_000 });
        Assert.Contains((await live!.TextContentAsync())!.Trim(), EmotionClasses.Fer2013); // text, not innerText: CSS capitalises
        // Live faces are named by the stream's track ids, uploaded ones by their order.
        Assert.Matches(@"^Face #\d+:", (await page.InnerTextAsync("#live-faces li div")).Trim());
        await page.WaitForFunctionAsync("() => document.getElementById('fps').textContent !== '– FPS'");

        var (photo, _) = FaceCanvas.Build([2, 3], 800, 400, 160);
        var photoPath = dir.File("photo.jpg");
        using (photo) Cv2.ImWrite(photoPath, photo);
        await page.SetInputFilesAsync("#photo-input", photoPath);
        var uploaded = await page.WaitForSelectorAsync("#photo-faces .face-label", new PageWaitForSelectorOptions { Timeout = 60_000 });
        Assert.Contains((await uploaded!.TextContentAsync())!.Trim(), EmotionClasses.Fer2013);
        Assert.StartsWith("Face 1:", (await page.InnerTextAsync("#photo-faces li div")).Trim(), StringComparison.Ordinal);

        // "Accurate (10 crops)" asks the API for ten-crop TTA.
        await page.CheckAsync("#photo-tta");
        var accurate = page.WaitForResponseAsync(r => r.Url.EndsWith("/api/v1/recognize?tta=crops", StringComparison.Ordinal));
        await page.SetInputFilesAsync("#photo-input", Array.Empty<string>()); // the same file again must fire "change"
        await page.SetInputFilesAsync("#photo-input", photoPath);
        Assert.Equal(200, (await accurate).Status);
        await page.WaitForSelectorAsync("#photo-status:has-text('10 crops per face')", new PageWaitForSelectorOptions { Timeout = 60_000 });

        // An artifact for people to look at (built from dataset faces: stays in the build output, never committed).
        var artifacts = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(artifacts);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(artifacts, "web-page.png"), FullPage = true });
        Assert.True(new FileInfo(Path.Combine(artifacts, "web-page.png")).Length > 10_000);
    }
}

/// <summary>A shared service: metrics, an API key, JSON errors for unknown routes, overload and a graceful stop.</summary>
[Collection("torch")]
public class ServiceTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Key = "test-key-0123456789abcdef";

    private static ByteArrayContent Png(byte[] png)
    {
        var body = new ByteArrayContent(png);
        body.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        return body;
    }

    private static byte[] Photo(int width, int height)
    {
        using var image = new Mat(height, width, MatType.CV_8UC3, new Scalar(120, 130, 140));
        Cv2.Randu(image, new Scalar(0, 0, 0), new Scalar(255, 255, 255));
        return image.ImEncode(".png");
    }

    [Fact]
    public async Task Metrics_move_with_requests_and_an_API_key_guards_everything_but_health()
    {
        await using var app = FerServer.Build(new ServerOptions { Urls = "http://127.0.0.1:0", ApiKey = Key }, server.Recognizer, logging: _ => { });
        await app.StartAsync();
        var baseUri = new Uri(app.Urls.First());
        using var http = new HttpClient { BaseAddress = baseUri };

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        var missing = await http.PostAsync("/api/v1/recognize", Png(Photo(64, 64)));
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Contains("API key", await missing.Content.ReadAsStringAsync());
        using (var wrong = new HttpRequestMessage(HttpMethod.Get, "/metrics"))
        {
            wrong.Headers.Add("X-API-Key", Key + "x");
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong)).StatusCode);
        }

        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        var before = await http.GetStringAsync("/metrics");
        Assert.Contains($"fersharp_model_info{{model=\"{server.Recognizer.Model.Metadata.Name}\"", before);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/api/v1/recognize", Png(Photo(320, 240)))).StatusCode);
        }
        var after = await http.GetStringAsync("/metrics");
        Assert.Equal(Count(before, "fersharp_faces_per_recognition_count") + 3, Count(after, "fersharp_faces_per_recognition_count"));
        Assert.Equal(Count(before, "fersharp_detector_seconds_count") + 3, Count(after, "fersharp_detector_seconds_count"));
        Assert.True(Count(after, "fersharp_rejected_total{reason=\"unauthorized\"}") >= 2);
        Assert.Contains("http_request_duration_seconds_bucket", after);
        Assert.Contains("endpoint=\"/api/v1/recognize\"", after);
    }

    /// <summary>The value of the first sample line that starts with <paramref name="series"/> (0 when absent).</summary>
    private static double Count(string exposition, string series) =>
        exposition.Split('\n').Where(l => l.StartsWith(series, StringComparison.Ordinal) && (l.Length == series.Length || l[series.Length] is ' ' or '{'))
            .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();

    [Fact]
    public async Task Unknown_routes_and_methods_answer_in_json()
    {
        var notFound = await server.Http.GetAsync(new Uri(server.BaseUri, "/api/v1/nothing"));
        Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
        Assert.Contains("no such endpoint", JsonDocument.Parse(await notFound.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        var wrongMethod = await server.Http.GetAsync(new Uri(server.BaseUri, "/api/v1/recognize"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        Assert.Contains("not allowed", await wrongMethod.Content.ReadAsStringAsync());
        // Quotes in messages stay readable in the raw body, not \u0027.
        var badTta = await server.Http.PostAsync(new Uri(server.BaseUri, "/api/v1/recognize?tta=bogus"), Png(Photo(64, 64)));
        var raw = await badTta.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, badTta.StatusCode);
        Assert.Contains("'bogus'", raw);
        Assert.DoesNotContain("\\u0027", raw);
    }

    [Fact]
    public async Task Overload_gets_503_with_Retry_After_instead_of_a_queue()
    {
        await using var app = FerServer.Build(new ServerOptions { Urls = "http://127.0.0.1:0", MaxConcurrentInference = 1, MaxQueuedInference = 0 }, server.Recognizer, logging: _ => { });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        var photo = Photo(1920, 1080);
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => http.PostAsync("/api/v1/recognize", Png(photo))));
        Assert.All(answers, a => Assert.Contains(a.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable }));
        var refused = answers.Where(a => a.StatusCode == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.NotEmpty(refused);
        Assert.All(refused, a => Assert.True(a.Headers.RetryAfter is not null, "503 without Retry-After"));
        Assert.Contains(answers, a => a.StatusCode == HttpStatusCode.OK);
    }

    [Fact]
    public async Task SIGTERM_lets_requests_in_flight_finish_and_exits_0()
    {
        using var process = Cli.Start("serve", "--urls", "http://127.0.0.1:0", "--max-concurrency", "1", "--max-queue", "16", "--shutdown-timeout", "300");
        var stderr = process.StandardError.ReadToEndAsync();
        var address = await Processes.ServingAddressAsync(process, TimeSpan.FromMinutes(2));
        Assert.True(address != null, $"fer serve did not start: {(process.HasExited ? await stderr : "")}");
        using var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
        var photo = Photo(640, 480);
        var requests = Enumerable.Range(0, 6).Select(_ => http.PostAsync("/api/v1/recognize", Png(photo))).ToList();
        // Wait until all six are in: one running, the others queued behind it.
        using var probe = new HttpClient { BaseAddress = address };
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromMinutes(1))
        {
            var exposition = await probe.GetStringAsync("/metrics");
            if (Count(exposition, "fersharp_recognitions_waiting") + Count(exposition, "fersharp_recognitions_running") >= 6) break;
            await Task.Delay(20);
        }
        Assert.Equal(0, Processes.Signal(process.Id, 15)); // SIGTERM, as Kubernetes and systemd stop a service
        var answers = await Task.WhenAll(requests);
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "the server did not stop");
        Assert.True(process.ExitCode == 0, await stderr);
    }
}
