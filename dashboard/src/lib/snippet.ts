/** The SDK code a developer pastes into the host app (see README, "The SDK in a host app"). */
export function sdkSnippet(token: string, serverUrl: string): string {
  return [
    "from lerna.sdk import LernaClient",
    "",
    `lerna = LernaClient("${token}", storage_dir, server_url="${serverUrl}").start()`,
    'lerna.set_user_id("user-42")',
    "shown = lerna.top_n(5)                  # best items for this user now",
    "lerna.capture(shown[0], success=True)   # the outcome: a local training label",
    "lerna.train_round()                     # when conditions allow",
  ].join("\n");
}
