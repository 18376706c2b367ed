using System.Security.Cryptography;
using System.Text;
using Balancer.Configuration;
using Microsoft.Extensions.Options;

namespace Balancer.Management;

/// <summary>
/// Who may use the management listener. <c>/healthz</c> and <c>/readyz</c> are open to all (kubelet,
/// keepalived and container probes carry no secrets; the answer tells a reason, never state). With <c>Balancer:Management:Token</c> set, everything else needs it, on any
/// address: a loopback listener is reachable by every local user and process, and by anything that can be
/// tricked into a request to localhost. Without a token, a loopback listener is open, and a listener on any
/// other address answers <c>401</c> unless <c>AllowAnonymous</c> says the network is private.
/// </summary>
/// <remarks>
/// The token is accepted as <c>Authorization: Bearer TOKEN</c> (Prometheus' <c>authorization</c>, curl
/// <c>-H</c>) or as the password of HTTP Basic authentication with any user name, so that a browser can
/// open the status page: it asks for the credentials once and sends them with the page's own requests.
/// </remarks>
internal sealed partial class ManagementAccess
{
    private const string Challenge = "Bearer realm=\"balancer-management\"";
    private const string BrowserChallenge = "Basic realm=\"balancer-management\", charset=\"UTF-8\"";
    private static readonly byte[] NoTokenBody = Encoding.UTF8.GetBytes(
        "401 Unauthorized: the management listener is not on loopback and no token is set (Balancer:Management:Token).\n");

    private static readonly byte[] BadTokenBody = "401 Unauthorized: send the management token as 'Authorization: Bearer <token>'.\n"u8.ToArray();

    private readonly IOptionsMonitor<BalancerOptions> _options;
    private readonly bool _openWithoutToken;
    private volatile Expected? _expected;

    public ManagementAccess(IOptionsMonitor<BalancerOptions> options, ILogger<ManagementAccess> logger)
    {
        _options = options;
        var management = options.CurrentValue.Management;
        var loopback = ListenAddress.TryParse(management.Listen, out var address, out _) && address!.IsLoopbackOnly;
        _openWithoutToken = loopback || management.AllowAnonymous;
        if (!loopback && string.IsNullOrEmpty(management.Token))
        {
            if (management.AllowAnonymous)
            {
                LogAnonymous(logger, management.Listen);
            }
            else
            {
                LogLockedOut(logger, management.Listen);
            }
        }
    }

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Path.Value is "/healthz" or Readiness.InstanceEndpoints.ReadyPath)
        {
            return next(context);
        }

        var token = _options.CurrentValue.Management.Token;
        if (string.IsNullOrEmpty(token))
        {
            return _openWithoutToken ? next(context) : RefuseAsync(context, NoTokenBody);
        }

        return Presented(context.Request.Headers.Authorization.ToString(), token) ? next(context) : RefuseAsync(context, BadTokenBody);
    }

    /// <summary>Compares hashes of fixed length in constant time, so neither the token's bytes nor its length leak through timing.</summary>
    private bool Presented(string authorization, string token)
    {
        var candidate = Credential(authorization);
        if (candidate is null)
        {
            return false;
        }

        var expected = _expected;
        if (expected is null || !ReferenceEquals(expected.Token, token))
        {
            // Hashed once per token value; a reload that changes it swaps the whole record.
            expected = new Expected(token, SHA256.HashData(Encoding.UTF8.GetBytes(token)));
            _expected = expected;
        }

        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(candidate)), expected.Hash);
    }

    /// <summary>The token in a Bearer credential, or the password of a Basic one; null for anything else.</summary>
    private static string? Credential(string authorization)
    {
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization[7..].Trim();
        }

        return DecodeBasic(authorization)?.Password;
    }

    /// <summary>The user name of a Basic credential (the status page's browser login), for the log of who changed what.</summary>
    internal static string? BasicUser(string authorization) => DecodeBasic(authorization)?.User;

    private static (string User, string Password)? DecodeBasic(string authorization)
    {
        if (!authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(authorization[6..].Trim()));
            var colon = decoded.IndexOf(':');
            return colon < 0 ? null : (decoded[..colon], decoded[(colon + 1)..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static Task RefuseAsync(HttpContext context, byte[] body)
    {
        context.Response.Headers.WWWAuthenticate = new([Challenge, BrowserChallenge]);
        context.Response.Headers.CacheControl = "no-store";
        return Hosting.PlainTextAnswer.WriteAsync(context, StatusCodes.Status401Unauthorized, body);
    }

    private sealed record Expected(string Token, byte[] Hash);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Warning, Message = "Management listener {Listen} is not on loopback and has no token: every management path except /healthz and /readyz answers 401 until Balancer:Management:Token (environment: Balancer__Management__Token) is set")]
    private static partial void LogLockedOut(ILogger logger, string listen);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "Management listener {Listen} is not on loopback and has no token: anyone who can reach it can read /status and /metrics (Balancer:Management:AllowAnonymous is true). Set Balancer:Management:Token unless this network is private")]
    private static partial void LogAnonymous(ILogger logger, string listen);
}
