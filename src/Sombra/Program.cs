using Sombra.Hosting;

return await Cli.RunAsync(args);
