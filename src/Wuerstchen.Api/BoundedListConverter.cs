using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wuerstchen.Api;

/// <summary>
/// Reads JSON arrays into <see cref="IReadOnlyList{T}"/> and stops at the first item past <c>maxItems</c>, so a body of
/// millions of numbers is refused after <c>maxItems</c> of them instead of after building the whole list. The field's
/// own limit (such as <c>Limits:MaxPriorSteps</c> + 1 timesteps) is checked by validation afterwards.
/// </summary>
internal sealed class BoundedListConverterFactory(int maxItems) : JsonConverterFactory
{
    public override bool CanConvert(Type typeToConvert) =>
        typeToConvert.IsGenericType && typeToConvert.GetGenericTypeDefinition() == typeof(IReadOnlyList<>);

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(Converter<>).MakeGenericType(typeToConvert.GetGenericArguments()[0]), maxItems)!;

    private sealed class Converter<T>(int maxItems) : JsonConverter<IReadOnlyList<T>>
    {
        public override IReadOnlyList<T>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.Null)
                return null;
            if (reader.TokenType != JsonTokenType.StartArray)
                throw new JsonException("Expected a JSON array.");
            var items = new List<T>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (items.Count == maxItems)
                    throw new JsonException($"The array holds more than {maxItems} items.");
                items.Add(JsonSerializer.Deserialize<T>(ref reader, options)!);
            }
            return items;
        }

        public override void Write(Utf8JsonWriter writer, IReadOnlyList<T> value, JsonSerializerOptions options)
        {
            writer.WriteStartArray();
            foreach (var item in value)
                JsonSerializer.Serialize(writer, item, options);
            writer.WriteEndArray();
        }
    }
}
