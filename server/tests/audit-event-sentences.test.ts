/**
 * The audit page's sentences: every action of the ledger has a renderer (a new action without one fails here), a
 * few sentences read exactly as a person expects, and odd payloads (old shapes, missing keys) never throw.
 */
import { describe, expect, it } from "vitest";
import { AUDIT_ACTIONS } from "@/server/audit/actions";
import { eventSentence, RENDERED_ACTIONS } from "@/app/_components/audit/event-sentence";

const ev = (action: string, payload: unknown, entityId: string | number = 12, actorName = "Eve Engineer", entityType = "run") => ({
  action,
  payload,
  entityId,
  actorName,
  entityType,
});

describe("audit event sentences", () => {
  it("has a renderer for every audit action", () => {
    const missing = AUDIT_ACTIONS.filter((a) => !RENDERED_ACTIONS.includes(a));
    expect(missing, "actions without a sentence renderer in app/_components/audit/event-sentence.ts").toEqual([]);
  });

  it("renders every action without throwing, with an empty or odd payload, and names the actor", () => {
    for (const action of AUDIT_ACTIONS) {
      for (const payload of [{}, null, [1], { changes: "x", counts: null, before: null }]) {
        const s = eventSentence(ev(action, payload));
        expect(s.length).toBeGreaterThan(5);
        expect(s).not.toContain("undefined");
      }
    }
  });

  it("reads a pilot's change as actor, verb, object and values", () => {
    expect(
      eventSentence(
        ev(
          "run.interventionRequested",
          {
            runId: 12,
            kind: "set",
            changes: [{ path: "training.learningRate", oldValue: 0.05, newValue: 0.005 }],
            rationale: "val loss oscillates",
          },
          3,
          "Eve Engineer",
          "intervention",
        ),
      ),
    ).toBe("Eve Engineer asked to change the learning rate of run #12 from 0.05 to 0.005: 'val loss oscillates'");
    expect(
      eventSentence(
        ev("run.interventionApplied", { runId: 12, kind: "set", epoch: 7, checkpointId: 40 }, 3, "Eve Engineer", "intervention"),
      ),
    ).toBe("Eve Engineer's request #3 (set) took effect on run #12 at epoch 7");
  });

  it("reads a cancellation request with its reason (older requests had none)", () => {
    expect(eventSentence(ev("run.cancelRequest", { statusAtRequest: "running", reason: "loss flat since epoch 2" }))).toBe(
      "Eve Engineer asked to cancel run #12 while it was running: 'loss flat since epoch 2'",
    );
    expect(eventSentence(ev("run.cancelRequest", { statusAtRequest: "queued" }))).toBe(
      "Eve Engineer asked to cancel run #12 while it was queued",
    );
  });

  it("says counts with their noun, singular for one", () => {
    expect(eventSentence(ev("run.cancel", { epochsRun: 1 }))).toBe("Eve Engineer cancelled run #12 after 1 epoch");
    expect(eventSentence(ev("run.log", { metrics: 1, tags: ["a", "b"] }))).toBe(
      "Eve Engineer logged 1 metric point, 2 tags to run #12 through the API",
    );
    expect(eventSentence(ev("sweep.stop", { cancelledTrialRunIds: [4], rationale: "done" }, 3, "Eve Engineer", "sweep"))).toBe(
      "Eve Engineer stopped sweep #3 (cancelling 1 active trial): 'done'",
    );
    expect(eventSentence(ev("model.create", { name: "iris", approvalsRequired: 2 }, 1, "Eve Engineer", "model"))).toBe(
      "Eve Engineer created the model iris (2 approvals to reach production)",
    );
  });

  it("reads a sweep's decisions and its machine decisions", () => {
    expect(
      eventSentence(
        ev(
          "sweep.create",
          {
            name: "lr",
            method: "tpe",
            maxTrials: 8,
            metric: { name: "val_loss", direction: "minimize" },
            seed: 17,
            rationale: "find a rate",
          },
          3,
          "Erin Engineer",
          "sweep",
        ),
      ),
    ).toBe("Erin Engineer started sweep #3 (lr): tpe search of up to 8 trials, minimize val_loss, seed 17: 'find a rate'");
    expect(
      eventSentence(
        ev(
          "run.create",
          { name: "lr · trial 2", origin: "sweep", sweepId: 3, trialIndex: 1, experimentId: 1 },
          40,
          "Runledger server (sweep #3, for Erin Engineer)",
        ),
      ),
    ).toBe("Runledger server (sweep #3, for Erin Engineer) generated run #40 (lr · trial 2) as trial 2 of sweep #3");
    expect(
      eventSentence(
        ev(
          "sweep.stopTrial",
          { runId: 40, rung: 3, metric: "val_loss", value: 0.9, eta: 3, trialsAtRung: 4 },
          3,
          "Runledger server",
          "sweep",
        ),
      ),
    ).toBe("Runledger server stopped trial run #40 of sweep #3 early at epoch 3: val_loss 0.9000, not in the top 1/3 of 4 trials");
    expect(
      eventSentence(ev("sweep.chooseWinner", { runId: 41, trials: 8, rationale: "lowest val loss" }, 3, "Erin Engineer", "sweep")),
    ).toBe("Erin Engineer chose run #41 as the winner of sweep #3 (8 trials): 'lowest val loss'");
  });

  it("shows metric values with the UI's precision (format.ts), the exact value staying in the payload", () => {
    const stop = ev(
      "sweep.stopTrial",
      { runId: 40, rung: 3, metric: "val_loss", value: 0.511361320813497, eta: 3, trialsAtRung: 4 },
      3,
      "Runledger server",
      "sweep",
    );
    expect(eventSentence(stop)).toBe(
      "Runledger server stopped trial run #40 of sweep #3 early at epoch 3: val_loss 0.5114, not in the top 1/3 of 4 trials",
    );
    expect((stop.payload as { value: number }).value).toBe(0.511361320813497);
    expect(
      eventSentence(
        ev(
          "sweep.complete",
          { trials: 8, best: { runId: 41, metric: "val_loss", value: 0.0004123456789 } },
          3,
          "Runledger server",
          "sweep",
        ),
      ),
    ).toBe("Runledger server completed sweep #3 after 8 trials; best: run #41 (val_loss 0.000412)");
    expect(
      eventSentence(
        ev(
          "run.complete",
          { epochsRun: 12, finalMetrics: { val_accuracy: 0.9333333333333333, val_loss: 0.21868312358856201 } },
          7,
          "Erin Engineer",
        ),
      ),
    ).toBe("Erin Engineer completed run #7 after 12 epochs (val_accuracy 93.3 %, val_loss 0.2187)");
    // A value that is not a number (an old or odd payload) reads as recorded.
    expect(
      eventSentence(ev("sweep.stopTrial", { runId: 40, rung: 3, metric: "val_loss", value: "n/a", eta: 3, trialsAtRung: 4 }, 3)),
    ).toContain("val_loss n/a,");
  });

  it("reads an alias move, a promotion request and a sign-in", () => {
    expect(
      eventSentence(
        ev(
          "alias.move",
          { model: "iris-clf", alias: "production", version: 2, promotionRequestId: 5, rationale: "beats v1" },
          1,
          "Rui Reviewer",
          "model",
        ),
      ),
    ).toBe("Rui Reviewer moved production of iris-clf to v2 (request #5): 'beats v1'");
    expect(
      eventSentence(
        ev("promotion.request", { model: "iris-clf", version: 2, alias: "production", rationale: "ready" }, 5, "Erin Engineer"),
      ),
    ).toBe("Erin Engineer asked to move iris-clf v2 to production: 'ready'");
    expect(
      eventSentence(
        ev(
          "promotion.request",
          {
            model: "iris-clf",
            version: 2,
            alias: "production",
            rationale: "ready",
            documentation: { written: 3, total: 5, acknowledgedMissing: true, sections: [] },
          },
          5,
          "Erin Engineer",
        ),
      ),
    ).toBe(
      "Erin Engineer asked to move iris-clf v2 to production: 'ready' (documentation: 3 of 5 sections written, missing ones acknowledged)",
    );
    expect(eventSentence(ev("user.signIn", { email: "a@b" }, 1, "Ada Admin", "user"))).toBe("Ada Admin signed in");
    expect(eventSentence(ev("run.annotate", { field: "name", from: "run 3", to: "lr sweep 0.01" }, 9))).toBe(
      "Eve Engineer changed the name of run #9 from 'run 3' to 'lr sweep 0.01'",
    );
    expect(eventSentence(ev("run.create", { experimentId: 4, name: "run 3", origin: "fork", parentRunId: 2 }, 9))).toBe(
      "Eve Engineer forked from run #2 as run #9 (run 3) in experiment #4",
    );
    expect(
      eventSentence(
        ev("run.create", { experimentId: 4, name: "iris · int8", origin: "compress", parentRunId: 2, parentCheckpointId: 17 }, 9),
      ),
    ).toBe("Eve Engineer compressed checkpoint #17 of run #2 as run #9 (iris · int8)");
  });

  it("reads an artifact uploaded through the tracking API with its path and sha256", () => {
    expect(eventSentence(ev("run.log", { artifacts: [{ id: 3, path: "model/weights.bin", sha256: "ab".repeat(32), bytes: 10 }] }, 7))).toBe(
      "Eve Engineer logged the artifact 'model/weights.bin' (sha256 abababababab…) to run #7 through the API",
    );
  });

  it("falls back to a plain sentence for an action this build does not know", () => {
    expect(eventSentence(ev("future.thing", {}, 7, "Ada Admin", "widget"))).toBe("Ada Admin did future.thing on widget #7");
  });
});
