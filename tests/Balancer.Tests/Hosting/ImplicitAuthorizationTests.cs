using Balancer.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Balancer.Tests.Hosting;

[Trait("Category", "Unit")]
public sealed class ImplicitAuthorizationTests
{
    [Fact]
    public void UseAuthorization_SetsTheKeyTheBalancerSetsToSkipTheImplicitMiddleware()
    {
        // The balancer sets the key itself instead of adding the middleware; if ASP.NET Core ever names it
        // differently, WebApplication would add its authorization middleware back in front of every request.
        var services = new ServiceCollection().AddLogging().AddAuthorization().BuildServiceProvider();
        var app = new ApplicationBuilder(services);
        Assert.False(app.Properties.ContainsKey(BalancerHost.AuthorizationMiddlewareSetKey));

        app.UseAuthorization();

        Assert.True(app.Properties.ContainsKey(BalancerHost.AuthorizationMiddlewareSetKey));
    }
}
