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
import type { Store } from "@/db/store";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";

export type ServiceDeps = { db: Db; artifacts: ArtifactStore; dataDir: string; auditKeys: AuditKeys };
export type SignedInActor = Actor & { id: number; role: Role; email: string };
export type ServiceContext = ServiceDeps & { actor: SignedInActor };

/**
 * The services of the web app on either store (issue 16): the SQLite handle and the file artifact store of an embedded
 * installation, or a PostgreSQL store and its artifact store (DATABASE_URL). `dataDir` is this machine's local
 * directory: the SQLite installation's data directory, or on PostgreSQL a scratch directory for upload temp files and
 * the public key file, never part of the record. Services ported onto the store take these; the SQLite-only ones
 * (the CLI's, the MLflow ingest worker) take ServiceDeps.
 */
export type AnyServiceDeps = { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string; auditKeys: AuditKeys };
export type AnyServiceContext = AnyServiceDeps & { actor: SignedInActor };

export const now = () => new Date().toISOString();

/** Roles allowed to change each kind of record; the procedure ladder checks these, services re-check. */
export function requireRole(actor: SignedInActor, roles: readonly Role[], doing: string): void {
  if (!roles.includes(actor.role)) forbidden(`a ${actor.role} cannot ${doing} (needs: ${roles.join(" or ")})`);
}
