import { describe, expect, it } from "vitest";
import { browserText } from "./browser-text";

describe("browserText: a session's browser in words", () => {
  it("names the browser, its major version and the system", () => {
    expect(
      browserText("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"),
    ).toBe("Chrome 156 on Linux");
    expect(browserText("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0")).toBe("Firefox 128 on Windows");
    expect(
      browserText(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
      ),
    ).toBe("Safari 17 on iOS");
  });

  it("shows what was sent when no browser can be named, and says when nothing was", () => {
    expect(browserText("curl/8.5.0")).toBe("curl/8.5.0");
    expect(browserText(null)).toBe("unknown");
    expect(browserText("")).toBe("unknown");
  });
});
