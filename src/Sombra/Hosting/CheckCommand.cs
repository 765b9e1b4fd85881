using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sombra.Hosting;

/// <summary><c>sombra check</c>: validate and print the effective settings, secrets masked.</summary>
public static class CheckCommand
{
    public static Command Create()
    {
        var command = new Command("check", "Validate the configuration and print the effective settings");
        command.SetAction(parsed =>
        {
            var output = parsed.InvocationConfiguration.Output;
            var options = Cli.LoadOptions(parsed, parsed.InvocationConfiguration.Error);
            if (options is null)
                return Cli.Refused;
            if (Submission.TlsCertificate.CheckConfiguredPair(options) is { } error)
            {
                parsed.InvocationConfiguration.Error.WriteLine("error: " + error);
                return Cli.Refused;
            }
            foreach (var warning in Warnings(options))
                parsed.InvocationConfiguration.Error.WriteLine("warning: " + warning);
            output.WriteLine(Render(options));
            return Cli.Ok;
        });
        return command;
    }

    /// <summary>Settings that are valid but probably not meant; they do not stop the relay.</summary>
    public static IEnumerable<string> Warnings(SombraOptions options)
    {
        // Mask mode must look like ordinary mail, and the default sender says the opposite.
        var sender = options.Anonymity.SenderAddress ?? "";
        var local = sender[..Math.Max(0, sender.LastIndexOf('@'))];
        if (options.Anonymity.Mode == "mask" && local.Contains("anonym", StringComparison.OrdinalIgnoreCase))
            yield return $"Anonymity:SenderAddress: '{sender}' tells every recipient that the message was "
                + "anonymized, which mask mode must never do; set an ordinary-looking address";
    }

    /// <summary>The settings as JSON, durations in configuration form and secrets replaced.</summary>
    public static string Render(SombraOptions options)
    {
        var json = JsonSerializer.SerializeToNode(options, SerializerOptions)!.AsObject();
        json.Remove("DataPath");
        if (options.Delivery.SmarthostPassword is not null)
            json["Delivery"]!["SmarthostPassword"] = "(set)";
        return json.ToJsonString(SerializerOptions);
    }

    private static readonly JsonSerializerOptions SerializerOptions = new()
    {
        WriteIndented = true,
        Converters = { new DurationJsonConverter() },
    };

    private sealed class DurationJsonConverter : System.Text.Json.Serialization.JsonConverter<TimeSpan>
    {
        public override TimeSpan Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Duration.TryParse(reader.GetString(), out var value) ? value : throw new JsonException();

        public override void Write(Utf8JsonWriter writer, TimeSpan value, JsonSerializerOptions options) =>
            writer.WriteStringValue(Duration.Format(value));
    }
}
