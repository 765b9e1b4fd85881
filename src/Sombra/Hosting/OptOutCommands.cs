using System.CommandLine;
using Sombra.Submission;

namespace Sombra.Hosting;

/// <summary><c>sombra optout add|remove|list</c>: recipients who refuse mail through this relay.</summary>
public static class OptOutCommands
{
    public static Command Create()
    {
        var optout = new Command("optout", "Manage the recipients who refuse mail through this relay");
        var address = new Argument<string>("ADDRESS") { Description = "the recipient's mail address" };

        var add = new Command("add", "Refuse all mail to ADDRESS from now on") { address };
        add.SetAction(parsed => Change(parsed, address, (list, a) => list.Add(a), "added", "already listed"));

        var remove = new Command("remove", "Accept mail to ADDRESS again") { address };
        remove.SetAction(parsed => Change(parsed, address, (list, a) => list.Remove(a), "removed", "not listed"));

        var list = new Command("list", "Print the stored hashes (addresses are never stored)");
        list.SetAction(parsed =>
        {
            var options = Cli.LoadOptions(parsed, parsed.InvocationConfiguration.Error);
            if (options is null)
                return Cli.Refused;
            foreach (var hash in new OptOutList(options.DataPath).Hashes())
                parsed.InvocationConfiguration.Output.WriteLine(hash);
            return Cli.Ok;
        });

        optout.Subcommands.Add(add);
        optout.Subcommands.Add(remove);
        optout.Subcommands.Add(list);
        return optout;
    }

    private static int Change(ParseResult parsed, Argument<string> argument, Func<OptOutList, string, bool> change,
        string done, string unchanged)
    {
        var (output, error) = (parsed.InvocationConfiguration.Output, parsed.InvocationConfiguration.Error);
        var options = Cli.LoadOptions(parsed, error);
        if (options is null)
            return Cli.Refused;
        var address = parsed.GetValue(argument)!;
        if (!SmtpPath.TryParseMailbox(address, smtpUtf8: true, out var mailbox, out _))
        {
            error.WriteLine("error: not a mail address");
            return Cli.Refused;
        }
        // The address itself is not echoed: the terminal's scrollback is a log too.
        output.WriteLine(change(new OptOutList(options.DataPath), mailbox) ? done : unchanged);
        return Cli.Ok;
    }
}
