using Sombra.Hosting;

// First of all: nothing Sombra writes may be readable by other local users.
PrivateFiles.Restrict();

return await Cli.RunAsync(args);
