/**
 * A bounded wait for the process-driving suites (workers, `cli train`): `pending`, or a rejection whose message
 * `describe()` builds when `ms` have passed first (then `onTimeout` runs, e.g. to kill the process, before the
 * rejection). The timer never keeps the test process alive.
 */
export function settleWithin<T>(pending: Promise<T>, ms: number, describe: () => string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    pending,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout?.();
        reject(new Error(describe()));
      }, ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}
