using Balancer.Headers;
using Microsoft.Extensions.Primitives;

namespace Balancer.Tests.Headers;

public sealed class ConnectionHeadersTests
{
    [Fact]
    public void Named_ListsEveryFieldButConnectionOptionsAndFraming()
    {
        var names = ConnectionHeaders.Named(new StringValues(["X-Secret, close", " keep-alive ,X-Other,, Content-Length", "Upgrade, host, TE"]));

        Assert.Equal(["X-Secret", "X-Other", "TE"], names);
    }

    [Fact]
    public void Named_NoConnectionHeader_IsNull()
    {
        Assert.Null(ConnectionHeaders.Named(StringValues.Empty));
        Assert.Null(ConnectionHeaders.Named("close"));
    }
}
