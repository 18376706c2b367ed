namespace Balancer.Hosting;

/// <summary>Wraps services that YARP registers with internal types, keeping every registration in place.</summary>
internal static class ServiceDecoration
{
    /// <summary>
    /// Replaces each singleton registration of <typeparamref name="TService"/> with <paramref name="decorate"/>
    /// applied to the original. Throws when there is none: the caller depends on YARP having registered it.
    /// </summary>
    public static IServiceCollection Decorate<TService>(this IServiceCollection services, Func<IServiceProvider, TService, TService> decorate)
        where TService : class
    {
        var found = false;
        for (var i = 0; i < services.Count; i++)
        {
            var original = services[i];
            if (original.ServiceType != typeof(TService) || original.IsKeyedService)
            {
                continue;
            }

            found = true;
            services[i] = ServiceDescriptor.Singleton<TService>(sp => decorate(sp, Create<TService>(sp, original)));
        }

        return found ? services : throw new InvalidOperationException($"No {typeof(TService).Name} is registered to decorate; call AddReverseProxy() first.");
    }

    /// <summary>The service <paramref name="descriptor"/> registers, made as the container would.</summary>
    internal static TService Create<TService>(IServiceProvider services, ServiceDescriptor descriptor) =>
        (TService)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));
}
