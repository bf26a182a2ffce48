/**
 * A timeout of any length. Bun, like Node, fires a setTimeout whose delay is
 * past 2^31-1 ms (24.8 days) at once, with a warning: a 30-day wall-time
 * limit would end a run immediately. Longer delays are chained in steps.
 */
const STEP_MAX = 0x7fff_ffff;

/** Calls `fn` once `ms` have passed (Infinity: never); returns the cancel function. */
export function after(ms: number, fn: () => void): () => void {
  if (ms === Infinity) return () => {};
  const deadline = performance.now() + ms;
  let handle: ReturnType<typeof setTimeout>;
  const arm = (left: number) => {
    handle = setTimeout(() => {
      const rest = deadline - performance.now();
      if (rest > STEP_MAX / 2) arm(rest);
      else fn();
    }, Math.min(Math.max(left, 0), STEP_MAX));
  };
  arm(ms);
  return () => clearTimeout(handle);
}
