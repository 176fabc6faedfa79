"use client";
/** Engineers move unprotected aliases (staging, canary…) directly, with a rationale; production is refused here and on the server. */
import { useState } from "react";
import { useMutation } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { FormError } from "@/app/_components/states";
import type { ModelDetail } from "@/server/registry/queries";
import { useInvalidateRegistry } from "./use-model-invalidate";

export function MoveAliasForm({ model }: { model: ModelDetail }) {
  const trpc = useTRPC();
  const invalidate = useInvalidateRegistry();
  const [alias, setAlias] = useState("staging");
  const [version, setVersion] = useState(String(model.versions[0]?.version ?? ""));
  const [rationale, setRationale] = useState("");
  const move = useMutation(
    trpc.models.moveAlias.mutationOptions({
      onSuccess: () => {
        setRationale("");
        void invalidate();
      },
    }),
  );
  return (
    <section className="panel" aria-label="Move an alias">
      <h2 style={{ marginTop: 0 }}>Move an alias</h2>
      <p className="muted" style={{ marginTop: 0 }}>
        Any alias except production moves directly (recorded in the audit ledger). Production moves only through an approved promotion
        request.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          move.mutate({ modelName: model.name, alias, version: Number(version), rationale });
        }}
      >
        <div className="form-grid">
          <label className="field">
            <span>Alias</span>
            <input aria-label="Alias name" value={alias} onChange={(e) => setAlias(e.target.value)} />
          </label>
          <label className="field">
            <span>Version</span>
            <select aria-label="Alias version" value={version} onChange={(e) => setVersion(e.target.value)}>
              {model.versions.map((v) => (
                <option key={v.id} value={v.version}>
                  v{v.version}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>Why</span>
            <input aria-label="Alias rationale" value={rationale} onChange={(e) => setRationale(e.target.value)} />
          </label>
        </div>
        <FormError error={move.error} />
        <button
          type="submit"
          style={{ marginTop: 8 }}
          disabled={move.isPending || alias.trim() === "" || rationale.trim() === "" || alias.trim() === "production"}
        >
          Move alias
        </button>
      </form>
    </section>
  );
}
