using System.Net;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.HighAvailability;

/// <summary>
/// What keepalived does to a request in flight when it takes the floating address away from a balancer,
/// without keepalived: a client sends a slow request to a second address of the balancer host, and the
/// address is deleted while the backend is still answering. The kernel will not send from an address the
/// host no longer has, so the answer only gets out with <c>Balancer:Shutdown:FloatingAddress</c>.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class MovedAddressTests
{
    private const string Subnet = "10.78.0.";
    private const string Floating = Subnet + "100";

    [NamespaceFact]
    public Task FloatingAddress_AddressRemovedWhileTheBackendAnswers_TheAnswerStillReachesTheClient() => RunAsync(floating: true);

    [NamespaceFact]
    public Task NotFloating_AddressRemovedWhileTheBackendAnswers_TheClientNeverGetsTheAnswer() => RunAsync(floating: false);

    private static async Task RunAsync(bool floating)
    {
        var directory = Directory.CreateTempSubdirectory("moved-address-").FullName;
        await using var lab = NetworkLab.Create();
        try
        {
            var backends = lab.AddHost("be", Subnet + "10/24");
            var backend = lab.Start(backends, ["dotnet", KeepalivedPair.SampleBackendDll(), "--urls", $"http://{Subnet}10:5001", "--name", "A"]);
            var lb = lab.AddHost("lb", Subnet + "11/24");
            lab.Run(lb, "ip", "addr", "add", Floating + "/24", "dev", "eth0");
            var config = Path.Combine(directory, "balancer.json");
            File.WriteAllText(config, Config(floating).ToJsonString());
            var balancer = lab.Start(lb, [.. BalancerProcess.Command, "--config", config]);

            using var clientSockets = new NamespaceSockets(lab.AddHost("client", Subnet + "20/24"));
            using var client = clientSockets.CreateClient(new Uri($"http://{Floating}:8080"), TimeSpan.FromSeconds(6));
            await Poll.UntilAsync(
                async () =>
                {
                    try
                    {
                        using var response = await client.GetAsync("/");
                        return response.IsSuccessStatusCode;
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        return false;
                    }
                },
                TimeSpan.FromSeconds(60),
                $"the balancer to serve through {Floating}:{Environment.NewLine}{balancer.Output}{backend.Output}");

            // A new connection: the request cannot be retried on another one, as a browser or HttpClient would
            // retry a kept-alive connection that failed before any answer.
            client.DefaultRequestHeaders.ConnectionClose = true;
            var slow = client.GetAsync("/delay/2000");
            await Poll.UntilAsync(() => InFlight(lab, lb) == 1, TimeSpan.FromSeconds(10), "the slow request to reach the backend");
            lab.Run(lb, "ip", "addr", "del", Floating + "/24", "dev", "eth0");

            if (floating)
            {
                using var answer = await slow;
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                Assert.Equal("A", answer.Headers.GetValues("X-Backend").Single());
            }
            else
            {
                var failure = await Assert.ThrowsAnyAsync<Exception>(() => slow);
                Assert.True(failure is TaskCanceledException, $"Expected the client to wait out its timeout, got {failure}");
            }

            Assert.DoesNotContain("cannot make", balancer.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Requests the balancer is forwarding now, from its own /status; null when it did not answer in time.</summary>
    private static int? InFlight(NetworkLab lab, string lb)
    {
        try
        {
            var status = JsonNode.Parse(lab.Run(lb, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:9091/status"))!;
            return status["clusters"]!.AsArray().Sum(c => c!["destinations"]!.AsArray().Sum(d => (int)d!["inFlight"]!));
        }
        catch (InvalidOperationException)
        {
            // curl timed out on a busy machine: ask again.
            return null;
        }
    }

    private static JsonObject Config(bool floating) => new()
    {
        ["Balancer"] = new JsonObject
        {
            ["Listen"] = "http://0.0.0.0:8080",
            ["Management"] = new JsonObject { ["Listen"] = "http://127.0.0.1:9091" },
            ["Shutdown"] = new JsonObject { ["FloatingAddress"] = floating },
        },
        ["ReverseProxy"] = new JsonObject
        {
            ["Routes"] = new JsonObject { ["all"] = new JsonObject { ["ClusterId"] = "backends", ["Match"] = new JsonObject { ["Path"] = "{**catch-all}" } } },
            ["Clusters"] = new JsonObject
            {
                ["backends"] = new JsonObject
                {
                    ["Destinations"] = new JsonObject { ["A"] = new JsonObject { ["Address"] = $"http://{Subnet}10:5001/" } },
                },
            },
        },
    };
}
