using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace SampleBackend.Rpc;

/// <summary>
/// A tiny gRPC client for the sample services, so that calls through the balancer can be tried without
/// grpcurl: <c>SampleBackend --grpc-call URL [--calls N] [--stream N] [--health] [--fail-with CODE] [--ca FILE]</c>.
/// All calls go over one channel (one HTTP/2 connection), which is what shows per-call balancing.
/// </summary>
public static class GrpcCallCommand
{
    public const string Flag = "--grpc-call";

    public const string Usage = """
        Usage: SampleBackend --grpc-call URL [--calls N] [--stream N] [--health] [--fail-with CODE] [--ca FILE]
          URL            http://host:port (HTTP/2 cleartext) or https://host:port
          --calls N      N unary Greeter.SayHello calls (default 30 unless --stream or --health is given)
          --stream N     one Counter.Count call streaming N messages
          --health       one grpc.health.v1.Health.Check call
          --fail-with C  ask the backend to end each unary call with gRPC status C (1-16)
          --ca FILE      trust the PEM certificate(s) in FILE for https (a private CA or self-signed)
        Prints one line per call with the x-backend metadata, then a count per backend.
        Exit code 0 when every call succeeded, 1 when one failed, 2 for bad arguments.
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (ArgumentException e)
        {
            error.WriteLine(e.Message);
            error.WriteLine(Usage);
            return 2;
        }

        using var channel = GrpcChannel.ForAddress(options.Address, new GrpcChannelOptions { HttpHandler = CreateHandler(options.CaFile) });
        return RunAsync(channel, options, output, error).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(GrpcChannel channel, Options options, TextWriter output, TextWriter error)
    {
        var failed = 0;
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var greeter = new Greeter.GreeterClient(channel);
        for (var i = 1; i <= options.Calls; i++)
        {
            using var call = greeter.SayHelloAsync(new HelloRequest { Name = "grpc-call", FailWith = options.FailWith });
            try
            {
                var reply = await call.ResponseAsync;
                var backend = Backend(await call.ResponseHeadersAsync);
                counts[backend] = counts.GetValueOrDefault(backend) + 1;
                output.WriteLine($"call {i}: x-backend={backend} {reply.Message}");
            }
            catch (RpcException e)
            {
                failed++;
                output.WriteLine($"call {i}: {e.StatusCode} ({e.Status.Detail})");
            }
        }

        if (options.Stream is int count)
        {
            try
            {
                using var call = new Counter.CounterClient(channel).Count(new CountRequest { Count = count });
                var backend = Backend(await call.ResponseHeadersAsync);
                var received = 0;
                await foreach (var reply in call.ResponseStream.ReadAllAsync())
                {
                    received++;
                    if (reply.Index != received)
                    {
                        error.WriteLine($"stream: message {received} had index {reply.Index}");
                        failed++;
                        break;
                    }
                }

                output.WriteLine($"stream: {received} of {count} messages from x-backend={backend}");
                failed += received == count ? 0 : 1;
            }
            catch (RpcException e)
            {
                failed++;
                output.WriteLine($"stream: {e.StatusCode} ({e.Status.Detail})");
            }
        }

        if (options.Health)
        {
            try
            {
                using var call = new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
                var reply = await call.ResponseAsync;
                output.WriteLine($"health: {reply.Status} from x-backend={Backend(await call.ResponseHeadersAsync)}");
                failed += reply.Status == HealthCheckResponse.Types.ServingStatus.Serving ? 0 : 1;
            }
            catch (RpcException e)
            {
                failed++;
                output.WriteLine($"health: {e.StatusCode} ({e.Status.Detail})");
            }
        }

        if (counts.Count > 0)
        {
            output.WriteLine(string.Join(' ', counts.Select(c => $"{c.Key}={c.Value}")));
        }

        return failed == 0 ? 0 : 1;
    }

    private static string Backend(Metadata headers) => headers.GetValue("x-backend") ?? "(none)";

    /// <summary>One HTTP/2 connection per channel; with <paramref name="caFile"/>, that file's certificates are trusted too.</summary>
    internal static SocketsHttpHandler CreateHandler(string? caFile)
    {
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = false };
        if (caFile is not null)
        {
            var trusted = new X509Certificate2Collection();
            trusted.ImportFromPemFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (errors == SslPolicyErrors.None)
                {
                    return true;
                }

                if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(new X509Certificate2(certificate));
            };
        }

        return handler;
    }

    private sealed record Options(Uri Address, int Calls, int? Stream, bool Health, int FailWith, string? CaFile)
    {
        public static Options Parse(string[] args)
        {
            string? url = null;
            int? calls = null;
            int? stream = null;
            var health = false;
            var failWith = 0;
            string? ca = null;
            for (var i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case Flag: url = Value(args, ref i); break;
                    case "--calls": calls = Number(args, ref i, 0, 1_000_000); break;
                    case "--stream": stream = Number(args, ref i, 0, CounterService.MaxCount); break;
                    case "--health": health = true; break;
                    case "--fail-with": failWith = Number(args, ref i, 0, 16); break;
                    case "--ca": ca = Value(args, ref i); break;
                    default: throw new ArgumentException($"unknown argument '{args[i]}'");
                }
            }

            if (!Uri.TryCreate(url, UriKind.Absolute, out var address) || address.Scheme is not ("http" or "https"))
            {
                throw new ArgumentException($"{Flag}: '{url}' is not an http:// or https:// URL");
            }

            if (ca is not null && !File.Exists(ca))
            {
                throw new ArgumentException($"--ca: no file '{ca}'");
            }

            return new Options(address, calls ?? (stream is null && !health ? 30 : 0), stream, health, failWith, ca);
        }

        private static string Value(string[] args, ref int i) =>
            ++i < args.Length ? args[i] : throw new ArgumentException($"{args[i - 1]} needs a value");

        private static int Number(string[] args, ref int i, int min, int max)
        {
            var name = args[i];
            var text = Value(args, ref i);
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
                ? value
                : throw new ArgumentException($"{name}: '{text}' is not a whole number from {min} to {max}");
        }
    }
}
