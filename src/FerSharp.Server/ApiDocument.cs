using System.Text.Json.Nodes;

using Microsoft.OpenApi;

namespace FerSharp.Server;

/// <summary>
/// What the OpenAPI document cannot learn from the endpoints themselves: the recognize call's body and query,
/// what each error means, and the WebSocket protocol of <c>/api/v1/stream</c>.
/// </summary>
internal static class ApiDocument
{
    public const string StreamProtocol = """
        WebSocket GET /api/v1/stream (?smooth=0..0.95, default 0.6: the weight of the past in each tracked face's
        probabilities). Send each video frame as one binary message holding a JPEG (or PNG). Each frame is
        answered by one text message, in order: {"faces":[{"id", "box":{"x","y","width","height"}, "emotion",
        "confidence", "probabilities":{class: p}, "found", "detector_score"}], "width", "height", "model",
        "elapsed_ms"}; ids follow a face from frame to frame. A frame that cannot be read is answered
        {"error": "..."} and the stream goes on; when the server is busy a frame is answered {"error": "server
        busy…"} instead of being queued. The API key, when the server has one, goes in X-API-Key or
        Authorization: Bearer on the upgrade request (browsers: ?api_key=).
        """;

    public static void Describe(OpenApiDocument document)
    {
        document.Info.Title = "FerSharp";
        document.Info.Description = "Facial-expression recognition: every face in an image with the probability of each expression. "
            + "Send the API key, when the server has one, as X-API-Key or Authorization: Bearer. " + StreamProtocol.ReplaceLineEndings(" ");
        document.Paths ??= [];
        var stream = new OpenApiOperation
        {
            Summary = "Live recognition over a WebSocket: JPEG frames in, tracked faces out.",
            Description = StreamProtocol.ReplaceLineEndings(" "),
            Parameters =
            [
                new OpenApiParameter
                {
                    Name = "smooth",
                    In = ParameterLocation.Query,
                    Description = "Weight of the past in each tracked face's probabilities, 0 (off) to 0.95.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.Number, Minimum = "0", Maximum = "0.95", Default = JsonValue.Create(FerServer.DefaultStreamSmoothing) },
                },
            ],
            Responses = new OpenApiResponses
            {
                ["101"] = new OpenApiResponse { Description = "Switching to the WebSocket protocol described above." },
                ["400"] = new OpenApiResponse { Description = "Not a WebSocket request, or a bad 'smooth'." },
                ["401"] = new OpenApiResponse { Description = "Missing or wrong API key." },
            },
        };
        var item = new OpenApiPathItem();
        item.AddOperation(HttpMethod.Get, stream);
        document.Paths["/api/v1/stream"] = item;
    }

    public static void DescribeRecognize(OpenApiOperation operation)
    {
        operation.Parameters ??= [];
        operation.Parameters.Add(new OpenApiParameter
        {
            Name = "tta",
            In = ParameterLocation.Query,
            Description = "Test-time augmentation per face: none (the server's setting when absent), flip, or crops (ten crops: more accurate, about ten times the time per face).",
            Schema = new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("none"), JsonValue.Create("flip"), JsonValue.Create("crops")] },
        });
        var file = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" };
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Description = "The image (JPEG, PNG, BMP, WebP, TIFF, …; at most 50 megapixels): a multipart form with a file field 'image', or the raw bytes with an image/* content type.",
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["multipart/form-data"] = new OpenApiMediaType
                {
                    Schema = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Required = new HashSet<string> { "image" },
                        Properties = new Dictionary<string, IOpenApiSchema> { ["image"] = file },
                    },
                },
                ["image/*"] = new OpenApiMediaType { Schema = file },
            },
        };
        var meanings = new Dictionary<string, string>
        {
            ["200"] = "Every face found, in the detector's order; an image without a face gives an empty list.",
            ["400"] = "Not a readable image, an image too large or too small, a malformed multipart body, or a bad 'tta'.",
            ["401"] = "Missing or wrong API key.",
            ["413"] = "The body is over the server's size limit (--max-body-mb).",
            ["415"] = "Neither multipart/form-data with 'image' nor an image/* body.",
            ["503"] = "Too many recognitions running and queued: retry after the Retry-After seconds.",
            ["504"] = "The recognition took longer than the server's timeout (--timeout).",
        };
        foreach (var (status, description) in meanings)
        {
            if (operation.Responses?.TryGetValue(status, out var response) == true && response is OpenApiResponse concrete) concrete.Description = description;
        }
    }
}
