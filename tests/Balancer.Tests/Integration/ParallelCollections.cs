namespace Balancer.Tests.Integration;

/// <summary>
/// Integration tests that assert no timing, only outcomes (exit codes, messages, exact counts, status codes)
/// and wait with deadlines: they run one class at a time beside the unit tests and testssl, instead of in the
/// serial <see cref="IntegrationCollection"/>, which starts only once every parallel collection is done.
/// The classes that redirect <see cref="Console"/> to read Program.Main's output are all here, so they
/// never run at the same time as each other.
/// </summary>
[CollectionDefinition(Name)]
public sealed class FunctionalCollection
{
    public const string Name = "Functional";
}

/// <summary>The testssl.sh scan: a minute or more of handshakes, nothing timed; started first among the parallel collections.</summary>
[CollectionDefinition(Name)]
public sealed class TestsslCollection
{
    public const string Name = "testssl";
}
