/**
 * What every service needs: the database, the artifact store, the audit signing keys (for the checkpoints signed
 * right after signatures and alias moves; never read from disk by a service) and who is acting.
 * Services own every write: they validate, then write the change and its audit event in one synchronous transaction.
 */
import { forbidden } from "@/server/errors";
import type { Db } from "@/db/client";
import type { ArtifactStore } from "@/server/artifacts/store";
import type { Actor } from "@/server/audit/ledger";
import type { Role } from "@/db/schema";
import type { AuditKeys } from "@/server/audit/keys";

export type ServiceDeps = { db: Db; artifacts: ArtifactStore; dataDir: string; auditKeys: AuditKeys };
export type SignedInActor = Actor & { id: number; role: Role; email: string };
export type ServiceContext = ServiceDeps & { actor: SignedInActor };

export const now = () => new Date().toISOString();

/** Roles allowed to change each kind of record; the procedure ladder checks these, services re-check. */
export function requireRole(actor: SignedInActor, roles: readonly Role[], doing: string): void {
  if (!roles.includes(actor.role)) forbidden(`a ${actor.role} cannot ${doing} (needs: ${roles.join(" or ")})`);
}
