"use client";
/** Admins set how many independent approvals a production move needs (1 or 2); the change is audited. */
import { useMutation } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { FormError } from "@/app/_components/states";
import type { ModelDetail } from "@/server/registry/queries";
import { useInvalidateRegistry } from "./use-model-invalidate";

export function ApprovalsSetting({ model }: { model: ModelDetail }) {
  const trpc = useTRPC();
  const invalidate = useInvalidateRegistry();
  const set = useMutation(trpc.models.setApprovalsRequired.mutationOptions({ onSuccess: () => void invalidate() }));
  return (
    <section className="panel" aria-label="Approval rule">
      <h2 style={{ marginTop: 0 }}>Approval rule</h2>
      <label className="field" style={{ maxWidth: 320 }}>
        <span>Approvals required to move production</span>
        <select
          aria-label="Approvals required"
          value={model.approvalsRequired}
          disabled={set.isPending}
          onChange={(e) => set.mutate({ modelName: model.name, approvalsRequired: Number(e.target.value) })}
        >
          <option value={1}>1 independent reviewer</option>
          <option value={2}>2 independent reviewers</option>
        </select>
      </label>
      <FormError error={set.error} />
    </section>
  );
}
