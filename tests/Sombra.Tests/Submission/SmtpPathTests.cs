using Sombra.Submission;

namespace Sombra.Tests.Submission;

public class SmtpPathTests
{
    [Theory]
    [InlineData("<alice@example.org>", "alice@example.org")]
    [InlineData("<a.b+tag@sub.example.org>", "a.b+tag@sub.example.org")]
    [InlineData("<\"john doe\"@example.org>", "\"john doe\"@example.org")]
    [InlineData("<x@[192.0.2.1]>", "x@[192.0.2.1]")]
    [InlineData("<x@[IPv6:2001:db8::1]>", "x@[IPv6:2001:db8::1]")]
    public void AcceptsPlainMailboxes(string path, string address)
    {
        var result = SmtpPath.ParsePath(path, smtpUtf8: false, allowNull: false);
        Assert.True(result.Ok, result.Error);
        Assert.Equal(address, result.Address);
    }

    [Theory]
    [InlineData("<@relay.example:alice@example.org>", "553 5.1.0")]
    [InlineData("<alice%other@example.org>", "553 5.1.3")]
    [InlineData("<host!alice@example.org>", "553 5.1.3")]
    [InlineData("<\"alice@other\"@example.org>", "553 5.1.3")]
    [InlineData("<alice@other@example.org>", "553 5.1.3")]
    [InlineData("alice@example.org", "501 5.1.7")]
    [InlineData("<alice>", "501 5.1.3")]
    [InlineData("<alice@-bad.example>", "501 5.1.2")]
    [InlineData("<alice@exa mple.org>", "501 5.1.2")]
    [InlineData("<.alice@example.org>", "501 5.1.3")]
    [InlineData("<josé@example.org>", "553 5.6.7")]
    public void RefusesRoutingAndMalformedPaths(string path, string code)
    {
        var result = SmtpPath.ParsePath(path, smtpUtf8: false, allowNull: false);
        Assert.False(result.Ok);
        Assert.StartsWith(code, result.Error);
    }

    [Fact]
    public void PathOver256OctetsIsRefused()
    {
        var path = "<" + new string('a', 60) + "@" + string.Join(".", Enumerable.Repeat(new string('b', 60), 4)) + ">";
        Assert.True(path.Length > 256);
        Assert.StartsWith("501 5.1.3", SmtpPath.ParsePath(path, false, false).Error);
    }

    [Fact]
    public void Utf8NeedsSmtpUtf8()
    {
        Assert.True(SmtpPath.ParsePath("<josé@exämple.org>", smtpUtf8: true, allowNull: false).Ok);
    }

    [Fact]
    public void NullReversePathOnlyWhereAllowed()
    {
        Assert.True(SmtpPath.ParsePath("<>", false, allowNull: true).Ok);
        Assert.False(SmtpPath.ParsePath("<>", false, allowNull: false).Ok);
    }
}
