/**
 * Summary statistics of raw samples. Medians and the 10th/90th percentiles
 * rather than means: a sandbox start has a long right tail (page faults,
 * scheduler, the other core busy), and one slow outlier must not move the
 * figure a goal is judged on.
 */

export interface Stat {
  median: number;
  p10: number;
  p90: number;
  mean: number;
  max: number;
  n: number;
}

/** The q-quantile (0..1) with linear interpolation between order statistics. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new Error("quantile of no samples");
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(samples: readonly number[]): Stat {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    p10: quantile(sorted, 0.1),
    p90: quantile(sorted, 0.9),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    max: sorted[sorted.length - 1]!,
    n: sorted.length,
  };
}

export function median(samples: readonly number[]): number {
  return summarize(samples).median;
}
