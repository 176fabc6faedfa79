/**
 * `--backend` of the commands that train here (train, resume, rerun, sweep, compress, pilot --rollback): auto (the
 * default: tensorflow, else wasm, else cpu; trainer/backend.ts) or one backend by name. The trainer takes any other
 * word for wasm, so a typo (`--backend gpu`) would train on wasm and record it: it is refused instead (exit 2).
 */
import type { BackendName } from "@/trainer/types";

export const BACKEND_CHOICES: readonly (BackendName | "auto")[] = ["auto", "tensorflow", "wasm", "cpu"];

/** The choices as the usage texts write them ("auto|tensorflow|wasm|cpu"): the list the refusal accepts, never a copy. */
export const BACKEND_USAGE = BACKEND_CHOICES.join("|");

/** The refusal's text when `backend` names no backend; else null. */
export function unknownBackendRefusal(command: string, backend: string): string | null {
  if ((BACKEND_CHOICES as readonly string[]).includes(backend)) return null;
  return `${command}: --backend takes ${BACKEND_CHOICES.join(", ")}, not "${backend}"\n`;
}
