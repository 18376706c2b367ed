using System.Text.Json;
using System.Text.Json.Serialization;

namespace SampleBackend;

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Hello))]
[JsonSerializable(typeof(Delayed))]
[JsonSerializable(typeof(Stats))]
[JsonSerializable(typeof(ArraySegment<Product>))]
[JsonSerializable(typeof(List<CityRevenue>))]
[JsonSerializable(typeof(IReadOnlyList<CityRevenue>))]
[JsonSerializable(typeof(IReadOnlyList<UploadedFile>))]
[JsonSerializable(typeof(string))]
internal sealed partial class BackendJsonContext : JsonSerializerContext;
