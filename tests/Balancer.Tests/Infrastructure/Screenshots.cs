using Balancer.Tests.Deployment;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// Where the browser tests put their pictures: the test output folder, so that running the tests never
/// changes the tree. With <c>UPDATE_SCREENSHOTS=1</c> in the environment they also replace the copies in
/// <c>docs/</c>, which is how the documentation's pictures are refreshed on purpose.
/// </summary>
internal static class Screenshots
{
    public const string UpdateVariable = "UPDATE_SCREENSHOTS";

    public static string Directory => Path.Combine(AppContext.BaseDirectory, "screenshots");

    /// <summary>Writes <paramref name="png"/> as <paramref name="fileName"/>; returns where it went.</summary>
    public static async Task<string> SaveAsync(string fileName, byte[] png)
    {
        var path = Path.Combine(System.IO.Directory.CreateDirectory(Directory).FullName, fileName);
        await File.WriteAllBytesAsync(path, png);
        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            await File.WriteAllBytesAsync(Repo.PathOf(Path.Combine("docs", fileName)), png);
        }

        return path;
    }
}
