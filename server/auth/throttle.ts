/**
 * Sign-in throttling per account and per client address, with exponential backoff (rate-limiter-flexible).
 *
 * How it works, for each key (an account's identifier digest, and the client address):
 * - Every attempt that is not already waiting out a backoff counts as a failure BEFORE the password is checked
 *   (so 100 concurrent attempts cannot all slip past the count); a successful sign-in takes its count back.
 * - The first FREE_FAILURES failures in the window are free. Each later one makes the key wait
 *   min(BASE · 2^(extra-1), MAX) seconds; attempts during the wait are answered 429 without counting or hashing.
 * - Counts reset WINDOW_SECONDS after the first failure.
 *
 * Storage is RateLimiterMemory: right for one server process (the design's deployment). The PostgreSQL issue moves
 * this to a shared store (rate-limiter-flexible has RateLimiterPostgres / RateLimiterDrizzle) so that several
 * processes share the counts.
 *
 * Client address: the socket's address by default; X-Forwarded-For only as far as RUNLEDGER_TRUST_PROXY says
 * (server/http/client-address.ts; README, Deployment settings), so a client cannot pick its own address.
 */
import { RateLimiterMemory, type RateLimiterRes } from "rate-limiter-flexible";
import { DomainError } from "@/server/errors";

/** Too many attempts for an account or address: a too_many_requests DomainError, answered 429 with Retry-After. */
export class TooManyAttempts extends DomainError {
  declare readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number, message: string) {
    super("too_many_requests", message, { retryAfterSeconds });
  }
}

type Policy = { freeFailures: number; windowSeconds: number; baseWaitSeconds: number; maxWaitSeconds: number };

export const ACCOUNT_POLICY: Policy = { freeFailures: 5, windowSeconds: 3600, baseWaitSeconds: 5, maxWaitSeconds: 15 * 60 };
export const ADDRESS_POLICY: Policy = { freeFailures: 10, windowSeconds: 3600, baseWaitSeconds: 5, maxWaitSeconds: 15 * 60 };

class KeyThrottle {
  private readonly failures: RateLimiterMemory;
  private readonly waits: RateLimiterMemory;
  constructor(
    readonly name: string,
    private readonly policy: Policy,
  ) {
    this.failures = new RateLimiterMemory({ keyPrefix: `${name}-failures`, points: policy.freeFailures, duration: policy.windowSeconds });
    this.waits = new RateLimiterMemory({ keyPrefix: `${name}-wait`, points: 1, duration: policy.maxWaitSeconds });
  }

  /** Seconds left to wait for this key, or 0. */
  async waiting(key: string): Promise<number> {
    const res: RateLimiterRes | null = await this.waits.get(key);
    return res && res.msBeforeNext > 0 ? Math.ceil(res.msBeforeNext / 1000) : 0;
  }

  /** Counts one attempt; returns the seconds to wait when it is past the free failures (the attempt is refused). */
  async count(key: string): Promise<number> {
    const res = await this.failures.penalty(key, 1);
    const extra = res.consumedPoints - this.policy.freeFailures;
    if (extra <= 0) return 0;
    const wait = Math.min(this.policy.baseWaitSeconds * 2 ** (extra - 1), this.policy.maxWaitSeconds);
    await this.waits.block(key, wait);
    return wait;
  }

  async forgive(key: string): Promise<void> {
    await this.failures.reward(key, 1);
  }

  async reset(key: string): Promise<void> {
    await this.failures.delete(key);
    await this.waits.delete(key);
  }
}

/** success: clear the account's count, take the address's back; failure: keep both; notChecked: take both back. */
export type AttemptOutcome = "success" | "failure" | "notChecked";
export type ThrottleDecision =
  | { allowed: true; release: (outcome: AttemptOutcome) => Promise<void> }
  | { allowed: false; retryAfterSeconds: number; by: "account" | "address" };

export class SignInThrottle {
  readonly account = new KeyThrottle("signin-account", ACCOUNT_POLICY);
  readonly address = new KeyThrottle("signin-address", ADDRESS_POLICY);

  /**
   * Decides whether an attempt may check a password. When allowed, call `release(outcome)` afterwards.
   */
  async attempt(accountKey: string, addressKey: string): Promise<ThrottleDecision> {
    const [accountWait, addressWait] = await Promise.all([this.account.waiting(accountKey), this.address.waiting(addressKey)]);
    if (accountWait > 0 || addressWait > 0)
      return accountWait >= addressWait
        ? { allowed: false, retryAfterSeconds: accountWait, by: "account" }
        : { allowed: false, retryAfterSeconds: addressWait, by: "address" };
    const [accountNew, addressNew] = await Promise.all([this.account.count(accountKey), this.address.count(addressKey)]);
    if (accountNew > 0 || addressNew > 0)
      return accountNew >= addressNew
        ? { allowed: false, retryAfterSeconds: accountNew, by: "account" }
        : { allowed: false, retryAfterSeconds: addressNew, by: "address" };
    return {
      allowed: true,
      release: async (outcome) => {
        if (outcome === "failure") return;
        if (outcome === "success") await this.account.reset(accountKey);
        else await this.account.forgive(accountKey);
        await this.address.forgive(addressKey);
      },
    };
  }

  /**
   * The same per-account count for a password re-entered by a signed-in user (signatures): the account's failures
   * are shared with sign-in, so a stolen session gets no extra guesses. No per-address count (the caller is
   * already identified by the session). When allowed, call `release(outcome)` afterwards.
   */
  async attemptAccount(accountKey: string): Promise<ThrottleDecision> {
    const waiting = await this.account.waiting(accountKey);
    if (waiting > 0) return { allowed: false, retryAfterSeconds: waiting, by: "account" };
    const wait = await this.account.count(accountKey);
    if (wait > 0) return { allowed: false, retryAfterSeconds: wait, by: "account" };
    return {
      allowed: true,
      release: async (outcome) => {
        if (outcome === "success") await this.account.reset(accountKey);
        else if (outcome === "notChecked") await this.account.forgive(accountKey);
      },
    };
  }
}
