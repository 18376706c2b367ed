using System.Security.Cryptography;

namespace SampleBackend;

/// <summary>
/// The seed papers' workload in miniature: a cheap product list, a join-heavy report and an upload.
/// The data set is generated from a fixed seed so every instance serves the same answers.
/// </summary>
public sealed class Workload
{
    private readonly Product[] _products;
    private readonly Customer[] _customers;
    private readonly Order[] _orders;

    public Workload()
    {
        var random = new Random(20240501);
        _products = new Product[100];
        for (var i = 0; i < _products.Length; i++)
        {
            _products[i] = new Product(i + 1, $"Product {i + 1}", Math.Round(1 + random.NextDouble() * 99, 2), random.Next(0, 500));
        }

        _customers = new Customer[200];
        for (var i = 0; i < _customers.Length; i++)
        {
            _customers[i] = new Customer(i + 1, $"Customer {i + 1}", $"City {random.Next(1, 21)}");
        }

        _orders = new Order[5000];
        for (var i = 0; i < _orders.Length; i++)
        {
            _orders[i] = new Order(i + 1, random.Next(1, _customers.Length + 1), random.Next(1, _products.Length + 1), random.Next(1, 6));
        }
    }

    /// <summary>The cheap read: the first <paramref name="limit"/> products.</summary>
    public ArraySegment<Product> Products(int limit) => new(_products, 0, Math.Clamp(limit, 1, _products.Length));

    /// <summary>
    /// The heavy read: orders joined to customers and products, grouped by city, like a SQL report with two
    /// joins and a GROUP BY. Done with hash joins over the whole table on every call, on purpose.
    /// </summary>
    public IReadOnlyList<CityRevenue> Report(int top)
    {
        var customers = _customers.ToDictionary(c => c.Id);
        var products = _products.ToDictionary(p => p.Id);
        return _orders
            .Join(customers, o => o.CustomerId, c => c.Key, (o, c) => (Order: o, Customer: c.Value))
            .Join(products, oc => oc.Order.ProductId, p => p.Key, (oc, p) => (oc.Customer.City, Revenue: oc.Order.Quantity * p.Value.Price))
            .GroupBy(x => x.City)
            .Select(g => new CityRevenue(g.Key, g.Count(), Math.Round(g.Sum(x => x.Revenue), 2)))
            .OrderByDescending(c => c.Revenue)
            .Take(Math.Clamp(top, 1, 20))
            .ToList();
    }

    /// <summary>The write: reads every uploaded file to the end and hashes it.</summary>
    public static async Task<IReadOnlyList<UploadedFile>> ReceiveAsync(IFormFileCollection files, CancellationToken cancellationToken)
    {
        var result = new List<UploadedFile>(files.Count);
        foreach (var file in files)
        {
            await using var stream = file.OpenReadStream();
            var hash = await SHA256.HashDataAsync(stream, cancellationToken);
            result.Add(new UploadedFile(file.FileName, file.Length, Convert.ToHexStringLower(hash)));
        }

        return result;
    }
}

public sealed record Product(int Id, string Name, double Price, int Stock);

public sealed record Customer(int Id, string Name, string City);

public sealed record Order(int Id, int CustomerId, int ProductId, int Quantity);

public sealed record CityRevenue(string City, int Orders, double Revenue);

public sealed record UploadedFile(string Name, long Size, string Sha256);
