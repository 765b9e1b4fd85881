namespace Sombra.Anonymity;

/// <summary>
/// Raised inside the stage when a message cannot be vouched for. The message text is the
/// refusal reason sent to the client; it never quotes the message.
/// </summary>
internal sealed class ScrubRefusedException(string reason) : Exception(reason);
