"use client";
/**
 * Administrators' user management: create a user (a temporary password is shown once), change roles, disable and
 * re-enable, reset a password (the person must change it at next sign-in), end a user's sessions. Every action is
 * checked and audited on the server (server/users/admin.ts); this page only asks.
 */
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { ErrorState, FormError, Loading } from "@/app/_components/states";
import { formatTime } from "@/app/_components/format";
import { EMAIL_MAX, NAME_MAX, ROLE_NAMES } from "@/contracts/user-fields";

type Role = (typeof ROLE_NAMES)[number];

/** A temporary password, shown once with who it is for. */
function OneTimePassword({ who, password }: { who: string; password: string }) {
  return (
    <div role="status" className="panel" style={{ borderColor: "var(--accent)" }}>
      Temporary password for <strong>{who}</strong> (shown once; they must change it at sign-in):{" "}
      <code className="hash" aria-label="Temporary password">
        {password}
      </code>
    </div>
  );
}

function CreateUser({ onCreated }: { onCreated: (who: string, password: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("engineer");
  const create = useMutation(
    trpc.users.create.mutationOptions({
      onSuccess: (r) => {
        onCreated(r.user.email, r.temporaryPassword);
        setEmail("");
        setName("");
        void queryClient.invalidateQueries({ queryKey: trpc.users.list.queryKey() });
      },
    }),
  );
  return (
    <form
      className="panel"
      aria-label="Create a user"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate({ email, name, role });
      }}
    >
      <h2 style={{ marginTop: 0 }}>Create a user</h2>
      <div className="form-grid">
        <label className="field">
          <span>Email</span>
          <input type="email" maxLength={EMAIL_MAX} value={email} onChange={(e) => setEmail(e.target.value)} required />
        </label>
        <label className="field">
          <span>Name</span>
          <input maxLength={NAME_MAX} value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label className="field">
          <span>Role</span>
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLE_NAMES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
      </div>
      <FormError error={create.error} />
      <button className="primary" type="submit" disabled={create.isPending} style={{ marginTop: 12 }}>
        {create.isPending ? "Creating…" : "Create user"}
      </button>
    </form>
  );
}

function Users({ me }: { me: Me }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const list = useQuery(trpc.users.list.queryOptions());
  const [shown, setShown] = useState<{ who: string; password: string } | null>(null);
  const [roles, setRoles] = useState<Record<number, Role>>({});
  const refresh = () => void queryClient.invalidateQueries({ queryKey: trpc.users.list.queryKey() });
  // A refused change (e.g. someone changed the user meanwhile) reloads the list and drops the unsaved role choice, so
  // the row shows the user as they are, not the choice the server refused.
  const update = useMutation(
    trpc.users.update.mutationOptions({
      onSuccess: refresh,
      onError: (_e, input) => {
        setRoles(({ [input.userId]: _dropped, ...rest }) => rest);
        refresh();
      },
    }),
  );
  const reset = useMutation(
    trpc.users.resetPassword.mutationOptions({
      onSuccess: (r) => {
        setShown({ who: r.user.email, password: r.temporaryPassword });
        refresh();
      },
    }),
  );
  const revoke = useMutation(trpc.users.revokeSessions.mutationOptions({ onSuccess: refresh }));
  // The outcome of the latest action only: an earlier refusal must not stay on screen beside a later success.
  const latest = [update, reset, revoke].reduce((a, b) => (b.submittedAt > a.submittedAt ? b : a));
  if (me.role !== "admin") return <ErrorState error="Only administrators manage users." title="Not available" />;
  return (
    <>
      <h1>Users</h1>
      <p className="subtitle">Who can sign in, and with which role. Every change here is recorded in the audit ledger.</p>
      {shown ? <OneTimePassword who={shown.who} password={shown.password} /> : null}
      <CreateUser onCreated={(who, password) => setShown({ who, password })} />
      {list.isPending ? (
        <Loading what="Loading users" />
      ) : list.error ? (
        <ErrorState error={list.error} />
      ) : (
        <div className="panel">
          <div className="table-scroll">
            <table aria-label="Users">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Email</th>
                  <th>Role</th>
                  <th>Status</th>
                  <th className="num">Sessions</th>
                  <th>Password changed (UTC)</th>
                  <th>Actions</th>
                </tr>
              </thead>
              <tbody>
                {list.data.users.map((u) => {
                  const chosen = roles[u.id] ?? u.role;
                  return (
                    <tr key={u.id} aria-label={u.email}>
                      <td>{u.name}</td>
                      <td className="mono">{u.email}</td>
                      <td>
                        <select
                          aria-label={`Role of ${u.email}`}
                          value={chosen}
                          onChange={(e) => setRoles({ ...roles, [u.id]: e.target.value as Role })}
                        >
                          {ROLE_NAMES.map((r) => (
                            <option key={r}>{r}</option>
                          ))}
                        </select>{" "}
                        {chosen !== u.role ? (
                          <button type="button" onClick={() => update.mutate({ userId: u.id, role: chosen })}>
                            Save role
                          </button>
                        ) : null}
                      </td>
                      <td>
                        {u.disabled ? <span className="badge failed">disabled</span> : <span className="badge completed">enabled</span>}{" "}
                        {u.mustChangePassword ? <span className="badge cancelled">must change password</span> : null}{" "}
                        {list.data.demoPasswordsInUse.includes(u.email) ? <span className="badge failed">public demo password</span> : null}
                      </td>
                      <td className="num">{u.activeSessions}</td>
                      <td>{u.passwordChangedAt ? formatTime(u.passwordChangedAt) : <span className="muted">never</span>}</td>
                      <td className="row">
                        <button
                          type="button"
                          className={u.disabled ? "" : "danger"}
                          disabled={u.id === me.id && !u.disabled}
                          onClick={() => update.mutate({ userId: u.id, disabled: !u.disabled })}
                        >
                          {u.disabled ? "Enable" : "Disable"}
                        </button>
                        <button type="button" disabled={u.id === me.id} onClick={() => reset.mutate({ userId: u.id })}>
                          Reset password
                        </button>
                        <button type="button" disabled={u.activeSessions === 0} onClick={() => revoke.mutate({ userId: u.id })}>
                          End sessions
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <FormError error={latest.error} />
        </div>
      )}
    </>
  );
}

export default function UsersPage() {
  return <Shell>{(me) => <Users me={me} />}</Shell>;
}
