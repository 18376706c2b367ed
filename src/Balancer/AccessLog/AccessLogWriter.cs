using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Threading.Channels;
using Balancer.Configuration;
using Balancer.Telemetry;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Balancer.AccessLog;

/// <summary>
/// Appends access-log lines to the file (or stdout) from a task of its own. Requests only queue a line in a
/// bounded buffer and never wait: when the writer falls behind (a slow or full disk) the buffer fills and
/// further lines are dropped and counted. The file is reopened on <c>SIGHUP</c>, for logrotate.
/// </summary>
internal sealed partial class AccessLogWriter : IAsyncDisposable
{
    /// <summary>
    /// How long the writer gathers lines before the next write: few writes under load, and a line reaches
    /// the file well within a second when traffic is low.
    /// </summary>
    internal static readonly TimeSpan WriteInterval = TimeSpan.FromMilliseconds(100);

    private const int WriteChunkBytes = 64 * 1024;

    private readonly Channel<AccessLogLine> _lines;
    private readonly TimeProvider _time;
    private readonly ILogger<AccessLogWriter> _logger;
    private readonly Counter.Child _droppedFull;
    private readonly Counter.Child _droppedWriteError;
    private readonly Counter _written;
    private readonly IDisposable? _optionsSubscription;
    private readonly PosixSignalRegistration? _hangUp;
    private readonly Task _run;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile string? _path;
    private volatile bool _reopen;
    private volatile bool _closing;
    private Stream? _stream;
    private string? _openPath;
    private string? _failedPath;

    public AccessLogWriter(IOptionsMonitor<BalancerOptions> options, BalancerMetricsRegistry metrics, TimeProvider time, ILogger<AccessLogWriter> logger)
    {
        _time = time;
        _logger = logger;
        var bufferLines = options.CurrentValue.AccessLog.BufferLines;
        _lines = Channel.CreateBounded<AccessLogLine>(new BoundedChannelOptions(bufferLines)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = false,
        });
        var dropped = metrics.Factory.CreateCounter(
            "balancer_access_log_dropped_total",
            "Access-log lines not written, by reason: buffer_full (the writer fell behind; the request itself was served) or write_error (the file could not be opened or written).",
            new CounterConfiguration { LabelNames = ["reason"] });
        _droppedFull = dropped.WithLabels("buffer_full");
        _droppedWriteError = dropped.WithLabels("write_error");
        _written = metrics.Factory.CreateCounter("balancer_access_log_lines_total", "Access-log lines written.");
        Apply(options.CurrentValue.AccessLog);
        _optionsSubscription = options.OnChange(o => Apply(o.AccessLog));
        if (!OperatingSystem.IsWindows())
        {
            _hangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                // Reopen instead of the default, which ends the process.
                context.Cancel = true;
                Reopen();
            });
        }

        _run = Task.Run(RunAsync);
    }

    /// <summary>True while a log is configured; the middleware does nothing per request otherwise.</summary>
    public bool IsOn => _path is not null;

    /// <summary>Lines queued and not yet written.</summary>
    public int Pending => _lines.Reader.Count;

    /// <summary>Queues a line; drops and counts it when the buffer is full.</summary>
    public void Write(in AccessLogLine line)
    {
        if (!_lines.Writer.TryWrite(line))
        {
            _droppedFull.Inc();
        }
    }

    /// <summary>Closes the file and opens the configured path again, as after logrotate moved it.</summary>
    public void Reopen()
    {
        _reopen = true;
        Wake();
    }

    public async ValueTask DisposeAsync()
    {
        _optionsSubscription?.Dispose();
        _hangUp?.Dispose();
        _closing = true;
        _lines.Writer.TryComplete();
        Wake();
        // Lines of the last requests are written; a writer stuck on a dead disk does not hold up the exit.
        await _run.WaitAsync(TimeSpan.FromSeconds(5), _time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private void Apply(AccessLogOptions options)
    {
        var path = options.Enabled ? options.Path!.Trim() : null;
        if (path is not null && path != AccessLogOptions.StandardOutput)
        {
            path = Path.GetFullPath(path);
        }

        if (!string.Equals(path, _path, StringComparison.Ordinal))
        {
            _path = path;
            Wake();
        }
    }

    private void Wake() => Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task RunAsync()
    {
        var reader = _lines.Reader;
        var buffer = new ArrayBufferWriter<byte>(WriteChunkBytes * 2);
        using var json = new Utf8JsonWriter(buffer, AccessLogLine.WriterOptions);
        Task<bool>? waiting = null;
        while (true)
        {
            var wake = _wake.Task;
            OpenAsConfigured();
            WriteQueued(reader, buffer, json);
            if (_closing)
            {
                break;
            }

            waiting ??= reader.WaitToReadAsync().AsTask();
            await Task.WhenAny(waiting, wake).ConfigureAwait(false);
            if (waiting.IsCompleted)
            {
                waiting = null;
                // Gather what else arrives for a moment: one write for many lines under load.
                await Task.Delay(WriteInterval, _time).ConfigureAwait(false);
            }
        }

        Close();
    }

    private void WriteQueued(ChannelReader<AccessLogLine> reader, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        var lines = 0;
        while (reader.TryRead(out var line))
        {
            line.WriteTo(json, buffer);
            lines++;
            if (buffer.WrittenCount >= WriteChunkBytes)
            {
                Flush(buffer, lines);
                lines = 0;
            }
        }

        Flush(buffer, lines);
    }

    private void Flush(ArrayBufferWriter<byte> buffer, int lines)
    {
        if (lines == 0)
        {
            return;
        }

        try
        {
            if (_stream is null)
            {
                throw new IOException($"the access log {_path ?? "(none)"} is not open");
            }

            _stream.Write(buffer.WrittenSpan);
            _stream.Flush();
            _written.Inc(lines);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            _droppedWriteError.Inc(lines);
            if (_stream is not null)
            {
                LogWriteFailed(_openPath ?? "", e.Message);
                // Opened again before the next write: a full disk may have room by then, a deleted mount may be back.
                Close();
                _reopen = true;
            }
        }
        finally
        {
            buffer.ResetWrittenCount();
        }
    }

    private void OpenAsConfigured()
    {
        var path = _path;
        var reopen = _reopen;
        _reopen = false;
        if (!reopen && string.Equals(path, _openPath, StringComparison.Ordinal) && (_stream is not null || path is null))
        {
            return;
        }

        Close();
        if (path is null)
        {
            return;
        }

        try
        {
            _stream = path == AccessLogOptions.StandardOutput
                ? Console.OpenStandardOutput()
                : new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.Append,
                    Access = FileAccess.Write,
                    // Readers (tail -f) and logrotate may open, move or delete it meanwhile.
                    Share = FileShare.ReadWrite | FileShare.Delete,
                    BufferSize = 0,
                });
            _openPath = path;
            _failedPath = null;
            LogOpened(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            _openPath = path;
            // Said once per path, not at every batch while the problem lasts; the lost lines are counted.
            if (!string.Equals(_failedPath, path, StringComparison.Ordinal))
            {
                _failedPath = path;
                LogOpenFailed(path, e.Message);
            }
        }
    }

    private void Close()
    {
        try
        {
            _stream?.Dispose();
        }
        catch (IOException)
        {
            // Nothing is buffered here: a failure to close loses no line.
        }

        _stream = null;
        _openPath = null;
    }

    [LoggerMessage(EventId = 5101, Level = LogLevel.Information, Message = "Access log writing to {Path}")]
    private partial void LogOpened(string path);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Error, Message = "Cannot open the access log {Path}: {Reason}; its lines are dropped and counted until it can be")]
    private partial void LogOpenFailed(string path, string reason);

    [LoggerMessage(EventId = 5103, Level = LogLevel.Error, Message = "Cannot write the access log {Path}: {Reason}; opening it again")]
    private partial void LogWriteFailed(string path, string reason);
}
