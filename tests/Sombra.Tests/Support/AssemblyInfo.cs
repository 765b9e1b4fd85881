// The tests drive Debian programs (swaks, msmtp, smtp-sink) and read /proc: Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
