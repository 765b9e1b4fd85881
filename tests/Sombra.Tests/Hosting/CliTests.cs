using Sombra.Hosting;
using Sombra.Submission;
using Sombra.Tests.Support;

namespace Sombra.Tests.Hosting;

public sealed class CliTests
{
    private static string Config(string json)
    {
        var path = Path.Combine(TempDirectory.Create("cli"), "sombra.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public async Task CheckPrintsEffectiveSettingsWithoutSecrets()
    {
        var config = Config("""
            { "HostName": "relay.example", "Delivery": { "Smarthost": "smtp.example:587",
              "SmarthostUser": "u", "SmarthostPassword": "hunter2", "RetryDelays": ["30s", "2m"] } }
            """);
        var result = await CliRunner.RunWithConfigAsync(config, null, "check");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("\"HostName\": \"relay.example\"", result.Output);
        Assert.Contains("\"30s\"", result.Output);
        Assert.DoesNotContain("hunter2", result.Output);
        Assert.Contains("127.0.0.1:2525", result.Output); // the default endpoint
    }

    [Fact]
    public async Task CheckReportsEveryErrorOnItsOwnLineAndExits1()
    {
        var config = Config("""
            { "HostName": "not a name", "Anonymity": { "Mode": "hide" },
              "Submission": { "TrustedNetworks": ["10.0.0.0/99"] } }
            """);
        var result = await CliRunner.RunWithConfigAsync(config, null, "check");
        Assert.Equal(1, result.ExitCode);
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains(lines, l => l.Contains("HostName"));
        Assert.Contains(lines, l => l.Contains("Anonymity:Mode"));
        Assert.Contains(lines, l => l.Contains("Submission:TrustedNetworks:0"));
    }

    [Fact]
    public async Task UnknownKeysAndMissingFilesAreRefused()
    {
        Assert.Equal(1, (await CliRunner.RunWithConfigAsync(Config("""{ "Hostname2": "x" }"""), null, "check")).ExitCode);
        Assert.Equal(1, (await CliRunner.RunWithConfigAsync("/nonexistent/sombra.json", null, "check")).ExitCode);
    }

    private static void AssertOneLineNoStackTrace(CliRunner.Result result, string expected)
    {
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(expected, line);
        Assert.DoesNotContain("   at ", result.Output + result.Error);
    }

    [Theory]
    [InlineData("check")]
    [InlineData("serve")]
    public async Task MalformedJsonIsOneLineAndExit1(string command)
    {
        var config = Config("""{ "HostName": "relay.example", """);
        AssertOneLineNoStackTrace(await CliRunner.RunWithConfigAsync(config, null, command), "sombra.json");
    }

    private static string WritePem(string directory, string name, string text)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static (string Certificate, string Key) SelfSigned(string directory, string name)
    {
        using var key = System.Security.Cryptography.ECDsa.Create();
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest(
            "CN=relay.example", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        return (WritePem(directory, name + ".crt", certificate.ExportCertificatePem()),
            WritePem(directory, name + ".key", key.ExportPkcs8PrivateKeyPem()));
    }

    private static string CertificateConfig(string data, string certificate, string key) =>
        Config($$"""
            { "HostName": "relay.example", "DataDirectory": "{{data}}",
              "Submission": { "Certificate": "{{certificate}}", "CertificateKey": "{{key}}",
                "Endpoints": [ { "Address": "127.0.0.1:0", "Tls": "starttls" } ] } }
            """);

    [Theory]
    [InlineData("check")]
    [InlineData("serve")]
    public async Task UnusableCertificatePairIsOneLineAndExit1(string command)
    {
        var data = TempDirectory.Create("pem");
        const string key = "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n";
        var garbage = CertificateConfig(data, WritePem(data, "garbage.crt", "not a certificate\n"),
            WritePem(data, "garbage.key", key));
        var result = await CliRunner.RunWithConfigAsync(garbage, null, command);
        AssertOneLineNoStackTrace(result, "Submission:Certificate");

        var (certificate, _) = SelfSigned(data, "one");
        var (_, otherKey) = SelfSigned(data, "two");
        var mismatched = CertificateConfig(data, certificate, otherKey);
        result = await CliRunner.RunWithConfigAsync(mismatched, null, command);
        AssertOneLineNoStackTrace(result, "Submission:Certificate");
    }

    [Fact]
    public async Task CheckAcceptsAGoodCertificatePair()
    {
        var data = TempDirectory.Create("pem");
        var (certificate, key) = SelfSigned(data, "good");
        var config = CertificateConfig(data, certificate, key);
        var result = await CliRunner.RunWithConfigAsync(config, null, "check");
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Error);
    }

    [Fact]
    public async Task UsageErrorsExit2()
    {
        Assert.Equal(2, (await CliRunner.RunWithConfigAsync(null, null, "frobnicate")).ExitCode);
        Assert.Equal(2, (await CliRunner.RunWithConfigAsync(null, null, "user", "add")).ExitCode);
    }

    [Fact]
    public async Task VersionPrints()
    {
        var result = await CliRunner.RunWithConfigAsync(null, null, "--version");
        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", result.Output);
    }

    [Fact]
    public async Task UserAddListRemove()
    {
        var data = TempDirectory.Create("users");
        var config = Config($$"""{ "DataDirectory": "{{data}}" }""");
        Assert.Equal(0, (await CliRunner.RunWithConfigAsync(config, "s3cret pass\n", "user", "add", "alice")).ExitCode);
        Assert.Equal(0, (await CliRunner.RunWithConfigAsync(config, "other\n", "user", "add", "bob",
            "--notify", "bob@example.org")).ExitCode);
        Assert.Equal(1, (await CliRunner.RunWithConfigAsync(config, "", "user", "add", "carol")).ExitCode);
        Assert.Equal(1, (await CliRunner.RunWithConfigAsync(config, "x\n", "user", "add", "bad name")).ExitCode);

        var list = await CliRunner.RunWithConfigAsync(config, null, "user", "list");
        Assert.Equal("alice\nbob\tnotify=bob@example.org\n", list.Output.Replace("\r\n", "\n"));

        // Only a slow hash is stored.
        var stored = File.ReadAllText(Path.Combine(data, "accounts.json"));
        Assert.DoesNotContain("s3cret", stored);
        Assert.Contains($"pbkdf2-sha256${AccountStore.Iterations}$", stored);
        Assert.True(new AccountStore(data).Verify("alice", "s3cret pass"));
        Assert.False(new AccountStore(data).Verify("alice", "s3cret pas"));

        Assert.Equal(0, (await CliRunner.RunWithConfigAsync(config, null, "user", "remove", "alice")).ExitCode);
        Assert.Equal(1, (await CliRunner.RunWithConfigAsync(config, null, "user", "remove", "alice")).ExitCode);
        Assert.Equal("bob\tnotify=bob@example.org\n",
            (await CliRunner.RunWithConfigAsync(config, null, "user", "list")).Output.Replace("\r\n", "\n"));
    }

    [Fact]
    public void EnvironmentVariablesOverrideTheFile()
    {
        var config = Config("""{ "Submission": { "MaxRecipients": 7 } }""");
        Environment.SetEnvironmentVariable("SOMBRA__Submission__MaxConnections", "55");
        try
        {
            var (options, errors) = ConfigLoader.Load(config);
            Assert.Empty(errors);
            Assert.Equal(7, options!.Submission.MaxRecipients);
            Assert.Equal(55, options.Submission.MaxConnections);
        }
        finally
        {
            Environment.SetEnvironmentVariable("SOMBRA__Submission__MaxConnections", null);
        }
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("5m", 300)]
    [InlineData("4h", 14400)]
    [InlineData("5d", 432000)]
    [InlineData("250ms", 0.25)]
    [InlineData("00:01:00", 60)]
    public void DurationsReadAsOperatorsWriteThem(string text, double seconds)
    {
        Assert.True(Duration.TryParse(text, out var value));
        Assert.Equal(seconds, value.TotalSeconds);
    }
}

public sealed class ExampleConfigurationTests
{
    public static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Sombra.slnx")))
            directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("Sombra.slnx not found above the test binaries.");
    }

    [Fact]
    public void ShippedExampleIsValid()
    {
        var (options, errors) = ConfigLoader.Load(Path.Combine(RepositoryRoot(), "sombra.example.json"));
        Assert.Empty(errors);
        Assert.Equal("relay.example.org", options!.HostName);
    }

    [Fact]
    public void EveryConfigurationKeyIsDocumentedInTheReadme()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        foreach (var key in Keys(typeof(SombraOptions), ""))
            Assert.True(readme.Contains($"`{key}`") || readme.Contains($"`{key}`,"), $"README lacks {key}");
    }

    private static IEnumerable<string> Keys(Type type, string prefix)
    {
        foreach (var property in type.GetProperties().Where(p => p.CanWrite))
        {
            var name = prefix + property.Name;
            if (property.PropertyType.Namespace == "Sombra.Hosting" && property.PropertyType.IsClass)
                foreach (var nested in Keys(property.PropertyType, name + ":"))
                    yield return nested;
            else
                yield return name;
        }
    }
}
