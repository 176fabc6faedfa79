/**
 * The backend choice: the cpu backend's "install tfjs-node" banner is not printed (every worker used to print it),
 * while the choice and its reason are still returned for the run record and tfjs's other warnings still reach the log.
 */
import * as tf from "@tensorflow/tfjs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { selectBackend } from "../backend";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("selectBackend", () => {
  it("activates cpu without the tfjs-node banner and still says why", async () => {
    const warn = vi.spyOn(console, "warn");
    const log = vi.spyOn(console, "log");
    const choice = await selectBackend("cpu", { needsConvGradients: false });
    expect(choice.name).toBe("cpu");
    expect(choice.reason).toBe("cpu was requested");
    expect(choice.versions.tfjs).toBe(tf.version_core);
    expect(tf.getBackend()).toBe("cpu");
    tf.tidy(() => tf.tensor([1, 2, 3]).square().dataSync());
    const printed = [...warn.mock.calls, ...log.mock.calls].map((args) => args.join(" ")).join("\n");
    expect(printed).not.toMatch(/tfjs-node/);
  });

  it("leaves tfjs's other warnings alone", async () => {
    await selectBackend("cpu", { needsConvGradients: false });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    // Re-registering a kernel is one of tfjs's ordinary warnings; it must still reach the log.
    const kernel = tf.getKernel("Square", "cpu");
    expect(kernel).toBeDefined();
    tf.registerKernel(kernel!);
    expect(warn.mock.calls.map((args) => args.join(" ")).join("\n")).toMatch(/already registered/);
  });
});
