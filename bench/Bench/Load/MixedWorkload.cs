using System.Diagnostics;
using System.Net.Http.Headers;
using Bench.Stats;

namespace Bench.Load;

/// <summary>The mixed-workload run's shape (the load-test paper: Locust, 500 users, spawn rate, mixed tasks).</summary>
/// <param name="ThinkMin">Each user waits between ThinkMin and ThinkMax after every answer, as Locust's <c>between()</c>.</param>
internal sealed record MixedPlan(int Users, TimeSpan Duration, double SpawnPerSecond, TimeSpan ThinkMin, TimeSpan ThinkMax, int UploadBytes)
{
    /// <summary>The paper's run: 500 users spawned 100/s, think 1-3 s, 64 KB uploads.</summary>
    public static MixedPlan Paper(TimeSpan duration) => new(500, duration, 100, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3), 64 * 1024);

    /// <summary>A few seconds' worth for smoke runs: 50 users, short think times, 8 KB uploads.</summary>
    public static MixedPlan Smoke(TimeSpan duration) => new(50, duration, 50, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(300), 8 * 1024);
}

/// <param name="ByOperation">Requests sent per operation ("GET /api/products", ...).</param>
/// <param name="FailedByOperation">Failed requests (non-2xx, transport error, timeout) per operation.</param>
/// <param name="FailureSamples">What the first failures were (status or exception), to say why in a report.</param>
internal sealed record MixedResult(
    long Total,
    long Failed,
    double Seconds,
    LatencySummary Latency,
    IReadOnlyDictionary<string, long> ByOperation,
    IReadOnlyDictionary<string, long> FailedByOperation,
    IReadOnlyList<string> FailureSamples)
{
    public double SuccessPercent => Total == 0 ? 0 : 100.0 * (Total - Failed) / Total;

    public double RequestsPerSecond => Total / Seconds;
}

/// <summary>
/// Many users, each in its own loop: pick a task (60% product list, 30% join-like report, 10% multipart
/// upload), send it, wait a think time, repeat, until the duration ends. Each user has its own keep-alive
/// connection, like a browser, so 500 users are 500 connections.
/// </summary>
internal static class MixedWorkload
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(60);
    private static readonly string[] Operations = ["GET /api/products", "GET /api/report", "POST /api/upload"];
    private const int MaxFailureSamples = 20;

    public static async Task<MixedResult> RunAsync(Uri target, MixedPlan plan, CancellationToken cancellationToken = default)
    {
        var upload = new byte[plan.UploadBytes];
        new Random(7).NextBytes(upload);
        var perUser = new List<double>[plan.Users];
        var failedPerUser = new long[plan.Users];
        var operations = new long[3];
        var started = Stopwatch.GetTimestamp();
        var failedOperations = new long[3];
        var failureSamples = new System.Collections.Concurrent.ConcurrentQueue<string>();
        void Fail(int operation, string reason)
        {
            Interlocked.Increment(ref failedOperations[operation]);
            if (failureSamples.Count < MaxFailureSamples)
            {
                failureSamples.Enqueue($"{Operations[operation]} at {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s: {reason}");
            }
        }

        var end = started + (long)(plan.Duration.TotalSeconds * Stopwatch.Frequency);

        async Task UserAsync(int user)
        {
            var latencies = perUser[user] = [];
            var random = new Random(user);
            using var client = new HttpMessageInvoker(LoadClient.Handler(null));

            // Spawning users gradually, as Locust's spawn rate does: part of the load's schedule.
            await Task.Delay(TimeSpan.FromSeconds(user / plan.SpawnPerSecond), cancellationToken);
            while (Stopwatch.GetTimestamp() < end && !cancellationToken.IsCancellationRequested)
            {
                var roll = random.Next(100);
                var operation = roll < 60 ? 0 : roll < 90 ? 1 : 2;
                Interlocked.Increment(ref operations[operation]);
                var sent = Stopwatch.GetTimestamp();
                try
                {
                    using var request = Request(target, operation, upload);
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(RequestTimeout);
                    using var response = await client.SendAsync(request, timeout.Token);
                    await response.Content.ReadAsByteArrayAsync(timeout.Token);
                    if (!response.IsSuccessStatusCode)
                    {
                        failedPerUser[user]++;
                        Fail(operation, $"{(int)response.StatusCode}");
                    }
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
                {
                    failedPerUser[user]++;
                    Fail(operation, $"{e.GetType().Name}: {e.Message}");
                }

                latencies.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
                var think = plan.ThinkMin + (plan.ThinkMax - plan.ThinkMin) * random.NextDouble();
                var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), end);
                if (left > TimeSpan.Zero)
                {
                    await Task.Delay(think < left ? think : left, cancellationToken);
                }
            }
        }

        var users = new Task[plan.Users];
        for (var u = 0; u < users.Length; u++)
        {
            var user = u;
            users[u] = Task.Run(() => UserAsync(user), CancellationToken.None);
        }

        await Task.WhenAll(users);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var all = new List<double>();
        long failed = 0;
        for (var u = 0; u < plan.Users; u++)
        {
            all.AddRange(perUser[u] ?? []);
            failed += failedPerUser[u];
        }

        if (all.Count == 0)
        {
            throw new InvalidOperationException("The mixed workload sent no request; is the duration shorter than the spawn time?");
        }

        // Jitter is not meaningful across interleaved users; the summary's send order is per user here.
        return new MixedResult(
            all.Count,
            failed,
            seconds,
            LatencyStats.Summarize(all.ToArray()),
            Operations.Select((name, i) => (name, i)).ToDictionary(o => o.name, o => operations[o.i]),
            Operations.Select((name, i) => (name, i)).ToDictionary(o => o.name, o => failedOperations[o.i]),
            [.. failureSamples]);
    }

    private static HttpRequestMessage Request(Uri target, int operation, byte[] upload)
    {
        switch (operation)
        {
            case 0:
                return new HttpRequestMessage(HttpMethod.Get, new Uri(target, "/api/products?limit=20"));
            case 1:
                return new HttpRequestMessage(HttpMethod.Get, new Uri(target, "/api/report?top=10"));
            default:
                var file = new ByteArrayContent(upload);
                file.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
                var form = new MultipartFormDataContent { { file, "file", "photo.jpg" } };
                return new HttpRequestMessage(HttpMethod.Post, new Uri(target, "/api/upload")) { Content = form };
        }
    }
}
