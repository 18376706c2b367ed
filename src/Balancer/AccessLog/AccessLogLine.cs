using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Balancer.AccessLog;

/// <summary>
/// One proxied request as the access log records it. A struct holding strings the request already had, so
/// queuing it allocates nothing; the JSON is made on the writer's thread, off the request path.
/// </summary>
internal readonly record struct AccessLogLine(
    DateTime Time,
    IPAddress? Client,
    string Method,
    string Target,
    string Protocol,
    int Status,
    string? Destination,
    string? Cluster,
    double DurationMs,
    long BytesIn,
    long BytesOut,
    int Retries,
    ActivityTraceId? TraceId,
    string? Error)
{
    private static readonly JsonEncodedText TimeName = JsonEncodedText.Encode("time");
    private static readonly JsonEncodedText ClientName = JsonEncodedText.Encode("client");
    private static readonly JsonEncodedText MethodName = JsonEncodedText.Encode("method");
    private static readonly JsonEncodedText PathName = JsonEncodedText.Encode("path");
    private static readonly JsonEncodedText ProtocolName = JsonEncodedText.Encode("protocol");
    private static readonly JsonEncodedText StatusName = JsonEncodedText.Encode("status");
    private static readonly JsonEncodedText DestinationName = JsonEncodedText.Encode("destination");
    private static readonly JsonEncodedText ClusterName = JsonEncodedText.Encode("cluster");
    private static readonly JsonEncodedText DurationName = JsonEncodedText.Encode("durationMs");
    private static readonly JsonEncodedText BytesInName = JsonEncodedText.Encode("bytesIn");
    private static readonly JsonEncodedText BytesOutName = JsonEncodedText.Encode("bytesOut");
    private static readonly JsonEncodedText RetriesName = JsonEncodedText.Encode("retries");
    private static readonly JsonEncodedText TraceIdName = JsonEncodedText.Encode("traceId");
    private static readonly JsonEncodedText ErrorName = JsonEncodedText.Encode("error");

    /// <summary>
    /// Writer options: no indentation, and only what JSON requires escaped, so a path reads as it was sent
    /// (the default encoder would write <c>+</c> and <c>&amp;</c> as <c>\u002B</c> and <c>\u0026</c>).
    /// </summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    /// <summary>Writes the line as one JSON object followed by a newline.</summary>
    public void WriteTo(Utf8JsonWriter json, IBufferWriter<byte> output)
    {
        json.Reset(output);
        json.WriteStartObject();
        Span<char> text = stackalloc char[64];
        Time.TryFormat(text, out var written, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        json.WriteString(TimeName, text[..written]);
        // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; the log says a.b.c.d.
        var client = Client is { IsIPv4MappedToIPv6: true } mapped ? mapped.MapToIPv4() : Client;
        if (client is not null && client.TryFormat(text, out written))
        {
            json.WriteString(ClientName, text[..written]);
        }
        else
        {
            json.WriteNull(ClientName);
        }

        json.WriteString(MethodName, Method);
        json.WriteString(PathName, Target);

        json.WriteString(ProtocolName, Protocol);
        json.WriteNumber(StatusName, Status);
        WriteStringOrNull(json, DestinationName, Destination);
        WriteStringOrNull(json, ClusterName, Cluster);
        json.WriteNumber(DurationName, Math.Round(DurationMs, 3));
        json.WriteNumber(BytesInName, BytesIn);
        json.WriteNumber(BytesOutName, BytesOut);
        json.WriteNumber(RetriesName, Retries);
        if (TraceId is { } trace)
        {
            json.WriteString(TraceIdName, trace.ToHexString());
        }

        if (Error is not null)
        {
            json.WriteString(ErrorName, Error);
        }

        json.WriteEndObject();
        json.Flush();
        output.Write("\n"u8);
    }

    private static void WriteStringOrNull(Utf8JsonWriter json, JsonEncodedText name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }
}
