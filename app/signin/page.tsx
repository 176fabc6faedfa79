"use client";
/**
 * Sign-in: email and password. A wrong password is refused with a plain message; too many attempts say how long to
 * wait. Afterwards the browser goes to `next` only when it is a path on this site (safeNextPath), and to the account
 * page first when the password must be changed.
 */
import { useRouter, useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { FormError } from "@/app/_components/states";
import { safeNextPath } from "@/contracts/safe-next-path";
import { EMAIL_MAX, PASSWORD_MAX } from "@/contracts/user-fields";

function SignInForm() {
  const trpc = useTRPC();
  const router = useRouter();
  const params = useSearchParams();
  const queryClient = useQueryClient();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const signIn = useMutation(
    trpc.auth.signIn.mutationOptions({
      onSuccess: async (result) => {
        await queryClient.invalidateQueries();
        const next = safeNextPath(params.get("next"));
        router.push(result.mustChangePassword ? `/account?next=${encodeURIComponent(next)}` : next);
      },
    }),
  );
  return (
    <main className="signin">
      <div className="panel">
        <h1>Sign in to Runledger</h1>
        <p className="subtitle">Experiment tracking you can verify.</p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            signIn.mutate({ email, password });
          }}
          style={{ display: "grid", gap: 12 }}
        >
          <label className="field">
            <span>Email</span>
            <input
              type="email"
              autoComplete="username"
              maxLength={EMAIL_MAX}
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              required
            />
          </label>
          <label className="field">
            <span>Password</span>
            <input
              type="password"
              autoComplete="current-password"
              maxLength={PASSWORD_MAX}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              required
            />
          </label>
          <FormError error={signIn.error} />
          <button className="primary" type="submit" disabled={signIn.isPending}>
            {signIn.isPending ? "Signing in…" : "Sign in"}
          </button>
        </form>
      </div>
    </main>
  );
}

export default function SignInPage() {
  return (
    <Suspense>
      <SignInForm />
    </Suspense>
  );
}
