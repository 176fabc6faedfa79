"use client";
/**
 * The signed-in person's account: change their own password (the current one is required; after an administrator's
 * reset this is the only thing they can do), see and end their sessions (signed-in browsers), and create and revoke
 * personal access tokens for the tracking API (a new token's text is shown once, right after creation).
 */
import { useRouter, useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { ErrorState, FormError, Loading } from "@/app/_components/states";
import { formatCountOf, formatTime } from "@/app/_components/format";
import { browserText } from "@/app/_components/browser-text";
import { safeNextPath } from "@/contracts/safe-next-path";
import { PASSWORD_MAX, PASSWORD_MIN } from "@/contracts/user-fields";

function ChangePassword({ mustChange }: { mustChange: boolean }) {
  const trpc = useTRPC();
  const router = useRouter();
  const params = useSearchParams();
  const queryClient = useQueryClient();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [mismatch, setMismatch] = useState<string | null>(null);
  const change = useMutation(
    trpc.auth.changePassword.mutationOptions({
      onSuccess: async () => {
        setCurrent("");
        setNext("");
        setConfirm("");
        await queryClient.invalidateQueries();
        if (mustChange) router.push(safeNextPath(params.get("next")));
      },
    }),
  );
  return (
    <section className="panel" aria-label="Change password">
      <h2 style={{ marginTop: 0 }}>Change password</h2>
      {mustChange ? (
        <p role="alert" className="error-text">
          Your password is a temporary one set by an administrator: choose a new one to continue.
        </p>
      ) : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (next !== confirm) return setMismatch("the new password and its confirmation differ");
          setMismatch(null);
          change.mutate({ currentPassword: current, newPassword: next });
        }}
        style={{ display: "grid", gap: 12, maxWidth: 380 }}
      >
        <label className="field">
          <span>Current password</span>
          <input
            type="password"
            autoComplete="current-password"
            maxLength={PASSWORD_MAX}
            value={current}
            onChange={(e) => setCurrent(e.target.value)}
            required
          />
        </label>
        <label className="field">
          <span>New password</span>
          <input
            type="password"
            autoComplete="new-password"
            minLength={PASSWORD_MIN}
            maxLength={PASSWORD_MAX}
            value={next}
            onChange={(e) => setNext(e.target.value)}
            required
          />
        </label>
        <label className="field">
          <span>Confirm new password</span>
          <input
            type="password"
            autoComplete="new-password"
            minLength={PASSWORD_MIN}
            maxLength={PASSWORD_MAX}
            value={confirm}
            onChange={(e) => setConfirm(e.target.value)}
            required
          />
        </label>
        <FormError error={mismatch ?? change.error} />
        <button className="primary" type="submit" disabled={change.isPending}>
          {change.isPending ? "Changing…" : "Change password"}
        </button>
        {change.data ? (
          <p role="status">Password changed. {formatCountOf(change.data.otherSessionsRevoked, "other session")} signed out.</p>
        ) : null}
      </form>
    </section>
  );
}

function Sessions() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const router = useRouter();
  const list = useQuery(trpc.auth.sessions.queryOptions());
  const revoke = useMutation(
    trpc.auth.revokeSession.mutationOptions({
      onSuccess: (_r, vars) => {
        if (list.data?.find((s) => s.id === vars.sessionId)?.current) {
          queryClient.clear();
          router.push("/signin");
        } else void queryClient.invalidateQueries({ queryKey: trpc.auth.sessions.queryKey() });
      },
    }),
  );
  if (list.isPending) return <Loading what="Loading your sessions" />;
  if (list.error) return <ErrorState error={list.error} title="Could not load your sessions" />;
  return (
    <section className="panel" aria-label="Your sessions">
      <h2 style={{ marginTop: 0 }}>Sessions</h2>
      <p className="subtitle">Each browser you signed in from. A session ends after 12 hours without activity or 7 days after sign-in.</p>
      <div className="table-scroll">
        <table aria-label="Sessions">
          <thead>
            <tr>
              <th>Signed in (UTC)</th>
              <th>Last active</th>
              <th>Ends</th>
              <th>Browser</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.map((s) => (
              <tr key={s.id}>
                <td>{formatTime(s.createdAt)}</td>
                <td>{formatTime(s.lastSeenAt)}</td>
                <td>
                  {formatTime(s.endsAt)} <span className="muted">({s.endsBecause === "idle" ? "if idle" : "at the latest"})</span>
                </td>
                <td title={s.userAgent ?? undefined}>{browserText(s.userAgent)}</td>
                <td>
                  {s.current ? <span className="badge">this browser</span> : null}{" "}
                  <button type="button" className="danger" disabled={revoke.isPending} onClick={() => revoke.mutate({ sessionId: s.id })}>
                    {s.current ? "Sign out here" : "End session"}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <FormError error={revoke.error} />
    </section>
  );
}

function AccessTokens() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const list = useQuery(trpc.auth.tokens.queryOptions());
  const refresh = () => queryClient.invalidateQueries({ queryKey: trpc.auth.tokens.queryKey() });
  const create = useMutation(
    trpc.auth.createToken.mutationOptions({
      onSuccess: () => {
        setName("");
        void refresh();
      },
    }),
  );
  const revoke = useMutation(trpc.auth.revokeToken.mutationOptions({ onSuccess: () => void refresh() }));
  if (list.isPending) return <Loading what="Loading your access tokens" />;
  if (list.error) return <ErrorState error={list.error} title="Could not load your access tokens" />;
  return (
    <section className="panel" aria-label="Access tokens">
      <h2 style={{ marginTop: 0 }}>Access tokens</h2>
      <p className="subtitle">
        For training scripts that log through the MLflow-compatible API (<span className="mono">/api/2.0/mlflow/</span>): set{" "}
        <span className="mono">MLFLOW_TRACKING_TOKEN</span> to a token. A token acts as you, with your role.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate({ name });
        }}
        style={{ display: "flex", gap: 12, alignItems: "end", flexWrap: "wrap" }}
      >
        <label className="field">
          <span>Token name</span>
          <input
            value={name}
            maxLength={100}
            onChange={(e) => setName(e.target.value)}
            placeholder="e.g. laptop training scripts"
            required
          />
        </label>
        <button className="primary" type="submit" disabled={create.isPending}>
          {create.isPending ? "Creating…" : "Create token"}
        </button>
      </form>
      <FormError error={create.error} />
      {create.data ? (
        <div role="status" className="panel">
          <p>
            Token <strong>{create.data.name}</strong> created. Copy it now: it is not shown again.
          </p>
          <p className="mono" aria-label="New token">
            {create.data.token}
          </p>
        </div>
      ) : null}
      <div className="table-scroll">
        <table aria-label="Access tokens">
          <thead>
            <tr>
              <th>Name</th>
              <th>Starts with</th>
              <th>Created (UTC)</th>
              <th>Last used</th>
              <th>Status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.map((t) => (
              <tr key={t.id}>
                <td>{t.name}</td>
                <td className="mono">{t.prefix}…</td>
                <td>{formatTime(t.createdAt)}</td>
                <td>{t.lastUsedAt ? formatTime(t.lastUsedAt) : "never"}</td>
                <td>{t.revokedAt ? `revoked ${formatTime(t.revokedAt)}` : "active"}</td>
                <td>
                  {t.revokedAt ? null : (
                    <button
                      type="button"
                      className="danger"
                      disabled={revoke.isPending}
                      onClick={() => revoke.mutate({ tokenId: t.id })}
                      aria-label={`Revoke token ${t.name}`}
                    >
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.data.length === 0 ? <p className="muted">No tokens yet.</p> : null}
      <FormError error={revoke.error} />
    </section>
  );
}

function Account({ me }: { me: Me }) {
  return (
    <>
      <h1>Your account</h1>
      <p className="subtitle">
        {me.name} · {me.email} · <span className="badge">{me.role}</span>
      </p>
      <ChangePassword mustChange={me.mustChangePassword} />
      {me.mustChangePassword ? null : <Sessions />}
      {me.mustChangePassword ? null : <AccessTokens />}
    </>
  );
}

export default function AccountPage() {
  return (
    <Suspense>
      <Shell>{(me) => <Account me={me} />}</Shell>
    </Suspense>
  );
}
