using System.Net.Http;
using System.Net.Sockets;
using Polly.CircuitBreaker;
using Polly.Timeout;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Telemetry;

/// <summary>Why forwarding to a destination failed at transport level, as far as retries care.</summary>
internal enum FailureKind
{
    /// <summary>Not a destination transport failure (client went away, bad request, success).</summary>
    None,

    /// <summary>The destination refused the connection: nothing of the request was sent.</summary>
    Refused,

    /// <summary>The circuit breaker is open for the destination: nothing was sent.</summary>
    CircuitOpen,

    /// <summary>Connecting failed otherwise (unreachable, DNS, TLS): the request may have been partly sent.</summary>
    Connect,

    /// <summary>The connection broke after the request went out.</summary>
    Reset,

    /// <summary>No response headers within the timeout.</summary>
    Timeout,

    /// <summary>
    /// The destination was marked Down while the request waited for its response headers, and the balancer
    /// withdrew the request to send it elsewhere.
    /// </summary>
    MarkedDown,

    /// <summary>
    /// The balancer could not open a socket itself (out of descriptors or buffers): nothing was sent, and
    /// the destination is not at fault.
    /// </summary>
    Local,
}

internal static class TransportFailure
{
    /// <summary>Label values for <see cref="FailureKind"/>, fixed so metrics have bounded labels.</summary>
    public static string Label(FailureKind kind) => kind switch
    {
        FailureKind.Refused => "refused",
        FailureKind.CircuitOpen => "circuit_open",
        FailureKind.Connect => "connect",
        FailureKind.Reset => "reset",
        FailureKind.Timeout => "timeout",
        FailureKind.MarkedDown => "marked_down",
        FailureKind.Local => "local",
        _ => "none",
    };

    /// <summary>True when nothing of the request can have reached the destination.</summary>
    public static bool NothingSent(FailureKind kind) => kind is FailureKind.Refused or FailureKind.CircuitOpen;

    public static FailureKind Classify(ForwarderError error, Exception? exception) => error switch
    {
        ForwarderError.RequestTimedOut => FailureKind.Timeout,
        // Not ResponseHeaders: the destination answered, and that error comes from copying its headers.
        ForwarderError.Request or ForwarderError.RequestBodyDestination or ForwarderError.ResponseBodyDestination
            => FromException(exception),
        ForwarderError.RequestBodyClient when DestinationCutTheBody(exception, out var send) => FromException(send),
        _ => FailureKind.None,
    };

    /// <summary>
    /// YARP blames the client for a request body whose read was cancelled because the destination's connection
    /// failed meanwhile (it reports the body's error and the send's together): when the body's error is only
    /// that cancellation and the send failed in transport, the destination is at fault.
    /// </summary>
    private static bool DestinationCutTheBody(Exception? exception, out Exception? send)
    {
        send = null;
        if (exception is AggregateException { InnerExceptions: [OperationCanceledException body, HttpRequestException failed] } && !IsClientSide(body))
        {
            send = failed;
            return true;
        }

        return false;
    }

    /// <summary>
    /// Why a health probe's send failed: YARP cancels a probe that outlives the cluster's probe timeout, so a
    /// cancellation is a timeout here.
    /// </summary>
    public static FailureKind OfProbe(Exception exception) =>
        exception is OperationCanceledException ? FailureKind.Timeout : FromException(exception);

    /// <summary>
    /// True when the exception comes from the client's side of the exchange (a malformed or cut-off request
    /// body), which says nothing about the destination.
    /// </summary>
    public static bool IsClientSide(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is Microsoft.AspNetCore.Http.BadHttpRequestException or Microsoft.AspNetCore.Connections.ConnectionResetException or Microsoft.AspNetCore.Connections.ConnectionAbortedException)
            {
                return true;
            }

            if (e is AggregateException aggregate && aggregate.InnerExceptions.Any(IsClientSide))
            {
                return true;
            }
        }

        return false;
    }

    private static FailureKind FromException(Exception? exception)
    {
        if (Hosting.LocalSocketErrors.IsLocal(exception))
        {
            return FailureKind.Local;
        }

        if (WithdrawnOnDown(exception))
        {
            return FailureKind.MarkedDown;
        }

        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case BrokenCircuitException:
                    return FailureKind.CircuitOpen;
                case TimeoutRejectedException:
                    return FailureKind.Timeout;
                case HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError }:
                    return e.InnerException switch
                    {
                        SocketException { SocketErrorCode: SocketError.ConnectionRefused } => FailureKind.Refused,
                        SocketException { SocketErrorCode: SocketError.TimedOut } => FailureKind.Timeout,
                        _ => FailureKind.Connect,
                    };
            }
        }

        return exception is null ? FailureKind.None : FailureKind.Reset;
    }

    /// <summary>
    /// Also looks inside YARP's pair of errors (request body and send) when the withdrawal cut a body being sent.
    /// </summary>
    private static bool WithdrawnOnDown(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is DestinationMarkedDownException || (e is AggregateException aggregate && aggregate.InnerExceptions.Any(WithdrawnOnDown)))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Thrown in place of the cancellation of a request withdrawn from a destination marked Down.</summary>
internal sealed class DestinationMarkedDownException(Exception inner)
    : Exception("The destination was marked down while the request waited for its response; withdrawn to be sent elsewhere.", inner);
