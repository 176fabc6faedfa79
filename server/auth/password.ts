/**
 * Password hashing with Node's scrypt, off the main thread.
 *
 * Stored form: `scrypt$N$r$p$salt_b64$hash_b64`. New hashes use OWASP's current scrypt parameters
 * (N=2^17, r=8, p=1: 128 MiB and ~0.3 s of one core per hash here); hashes stored with weaker parameters (the
 * first release used N=2^14) still verify and `needsRehash` says to replace them after the next successful sign-in.
 *
 * Invariants:
 * - Hashing runs in libuv's thread pool (`crypto.scrypt`, callback form), never `scryptSync` on a request path.
 *   At most HASH_CONCURRENCY hashes run at once (each takes 128 MiB and a core) and at most HASH_QUEUE_LIMIT wait:
 *   past that `PasswordHasherBusyError` is thrown so a flood is refused quickly instead of queueing for minutes.
 * - `checkPasswordOrDummy` does the same work whether or not an account exists (it verifies against DUMMY_HASH),
 *   so response time does not reveal which emails have accounts.
 * - Comparison is constant-time; parameters read from a stored hash are bounded (a forged N=2^30 cannot exhaust memory).
 * - There is no synchronous check: every password check (sign-in, own password change, signature re-entry in
 *   server/auth/signature-password.ts) uses `checkPassword` / `checkPasswordOrDummy`.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from "node:crypto";
import os from "node:os";
import { DomainError } from "@/server/errors";

export const SCRYPT_PARAMS = { N: 2 ** 17, r: 8, p: 1 } as const;
const KEYLEN = 32;
/** Node refuses scrypt when 128·N·r exceeds maxmem (default 32 MiB): raise it to fit the largest hash we accept. */
const MAXMEM = 192 * 1024 * 1024;
const MAX_ACCEPTED_N = 2 ** 17;

/**
 * Random salt and random "hash" bytes with the current parameters: no password matches it, and checking one against it
 * costs exactly a real check. Unknown emails are checked against it.
 */
export const DUMMY_HASH = "scrypt$131072$8$1$vOFAbHXpox+8Ct68bSO05Q==$3o+gs4ttHFK5kezVdP8lLmGv9Dg5JiVtnOPLAOwac48=";

/** Half the cores (at least one): the other half keeps serving pages while a sign-in flood hashes. */
export const HASH_CONCURRENCY = Math.max(1, Number(process.env.RUNLEDGER_HASH_CONCURRENCY) || Math.floor(os.cpus().length / 2));
export const HASH_QUEUE_LIMIT = 32;

/** The hashing queue is full: a too_many_requests DomainError (429, Retry-After 2 s), not counted against the user. */
export class PasswordHasherBusyError extends DomainError {
  declare readonly retryAfterSeconds: number;
  constructor() {
    super("too_many_requests", "the server is busy checking other sign-ins: try again in a few seconds", { retryAfterSeconds: 2 });
  }
}

let running = 0;
const waiting: (() => void)[] = [];

/** Runs `work` when a hashing slot is free; refuses at once when too many are already waiting. */
async function withHashSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= HASH_CONCURRENCY) {
    if (waiting.length >= HASH_QUEUE_LIMIT) throw new PasswordHasherBusyError();
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else running++;
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next)
      next(); // the slot passes straight to the next waiter
    else running--;
  }
}

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return withHashSlot(
    () =>
      new Promise((resolve, reject) =>
        scrypt(password, salt, keylen, { ...opts, maxmem: MAXMEM }, (err, key) => (err ? reject(err) : resolve(key))),
      ),
  );
}

type Parsed = { N: number; r: number; p: number; salt: Buffer; hash: Buffer };

/** Parses a stored hash; null when it is not one we can check (wrong scheme, out-of-bounds parameters). */
function parse(stored: string): Parsed | null {
  const [scheme, n, r, p, saltB64, hashB64, ...rest] = stored.split("$");
  if (scheme !== "scrypt" || !n || !r || !p || !saltB64 || !hashB64 || rest.length) return null;
  const N = Number(n),
    R = Number(r),
    P = Number(p);
  const powerOfTwo = Number.isInteger(N) && N >= 2 && (N & (N - 1)) === 0;
  if (!powerOfTwo || N > MAX_ACCEPTED_N || !Number.isInteger(R) || R < 1 || R > 16 || !Number.isInteger(P) || P < 1 || P > 4) return null;
  const hash = Buffer.from(hashB64, "base64");
  if (hash.length < 16 || hash.length > 64) return null;
  return { N, r: R, p: P, salt: Buffer.from(saltB64, "base64"), hash };
}

function format(salt: Buffer, hash: Buffer): string {
  const { N, r, p } = SCRYPT_PARAMS;
  return `scrypt$${N}$${r}$${p}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  return format(salt, await scryptAsync(password, salt, KEYLEN, SCRYPT_PARAMS));
}

/** True when the stored hash matches. A malformed stored hash never matches (and still costs one dummy check). */
export async function checkPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (!parsed) {
    await checkPassword(password, DUMMY_HASH);
    return false;
  }
  const actual = await scryptAsync(password, parsed.salt, parsed.hash.length, { N: parsed.N, r: parsed.r, p: parsed.p });
  return timingSafeEqual(parsed.hash, actual);
}

/** Checks a password against the user's hash, or against DUMMY_HASH when there is no user: the same work either way. */
export async function checkPasswordOrDummy(password: string, stored: string | null): Promise<boolean> {
  const ok = await checkPassword(password, stored ?? DUMMY_HASH);
  return ok && stored !== null;
}

/** True when a stored hash uses weaker parameters than today's (replace it after the next successful sign-in). */
export function needsRehash(stored: string): boolean {
  const parsed = parse(stored);
  return !parsed || parsed.N < SCRYPT_PARAMS.N || parsed.r < SCRYPT_PARAMS.r || parsed.hash.length < KEYLEN;
}

/** Synchronous hash, for seeding and tests only (never on a request path: it blocks the event loop ~0.3 s). */
export function hashPasswordSync(password: string): string {
  const salt = randomBytes(16);
  return format(salt, scryptSync(password, salt, KEYLEN, { ...SCRYPT_PARAMS, maxmem: MAXMEM }));
}
