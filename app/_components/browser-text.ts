/**
 * A signed-in session's browser in words, as account pages elsewhere show it ("Chrome 156 on Linux", "Safari 17 on
 * iOS"), read from its user agent by bowser; the user agent itself when bowser cannot name the browser (a script's
 * "curl/8.5.0"), "unknown" when none was sent. Only for display: nothing is decided on it.
 */
import Bowser from "bowser";

export function browserText(userAgent: string | null): string {
  if (!userAgent) return "unknown";
  const { browser, os } = Bowser.parse(userAgent);
  if (!browser.name) return userAgent;
  const major = browser.version?.split(".")[0];
  return `${browser.name}${major ? ` ${major}` : ""}${os.name ? ` on ${os.name}` : ""}`;
}
