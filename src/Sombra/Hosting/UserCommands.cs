using System.CommandLine;
using Sombra.Submission;

namespace Sombra.Hosting;

/// <summary><c>sombra user add|remove|list</c>: the accounts that may authenticate.</summary>
public static class UserCommands
{
    public static Command Create()
    {
        var user = new Command("user", "Manage the accounts that may authenticate");

        var name = new Argument<string>("NAME") { Description = "account name" };
        var notify = new Option<string?>("--notify")
        {
            Description = "address that receives delivery failure reports for this account",
        };
        var add = new Command("add", "Add an account, or set a new password; the password is read from standard input")
        {
            name, notify,
        };
        add.SetAction(parsed =>
        {
            var (output, error) = (parsed.InvocationConfiguration.Output, parsed.InvocationConfiguration.Error);
            var options = Cli.LoadOptions(parsed, error);
            if (options is null)
                return Cli.Refused;
            var account = parsed.GetValue(name)!;
            if (!AccountStore.IsValidName(account))
            {
                error.WriteLine("error: a name is 1 to 64 letters, digits and . _ - @ +");
                return Cli.Refused;
            }
            var address = parsed.GetValue(notify);
            if (address is not null && !Submission.SmtpPath.TryParseMailbox(address, smtpUtf8: true, out _, out _))
            {
                error.WriteLine("error: --notify needs a mail address");
                return Cli.Refused;
            }
            var password = Console.In.ReadLine()?.TrimEnd('\r', '\n');
            if (string.IsNullOrEmpty(password))
            {
                error.WriteLine("error: no password on standard input");
                return Cli.Refused;
            }
            new AccountStore(options.DataPath).Add(account, password, address);
            output.WriteLine($"account {account} saved");
            return Cli.Ok;
        });

        var remove = new Command("remove", "Remove an account") { name };
        remove.SetAction(parsed =>
        {
            var (output, error) = (parsed.InvocationConfiguration.Output, parsed.InvocationConfiguration.Error);
            var options = Cli.LoadOptions(parsed, error);
            if (options is null)
                return Cli.Refused;
            var account = parsed.GetValue(name)!;
            if (!new AccountStore(options.DataPath).Remove(account))
            {
                error.WriteLine($"error: no account {account}");
                return Cli.Refused;
            }
            output.WriteLine($"account {account} removed");
            return Cli.Ok;
        });

        var list = new Command("list", "List the accounts");
        list.SetAction(parsed =>
        {
            var options = Cli.LoadOptions(parsed, parsed.InvocationConfiguration.Error);
            if (options is null)
                return Cli.Refused;
            foreach (var (account, details) in new AccountStore(options.DataPath).All().OrderBy(a => a.Key))
                parsed.InvocationConfiguration.Output.WriteLine(
                    details.Notify is null ? account : $"{account}\tnotify={details.Notify}");
            return Cli.Ok;
        });

        user.Subcommands.Add(add);
        user.Subcommands.Add(remove);
        user.Subcommands.Add(list);
        return user;
    }
}
