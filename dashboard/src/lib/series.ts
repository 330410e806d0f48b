/** Turning API rows into chart series (pure, tested without a browser). */
import type { Version, WeekActivity } from "@/api/types";

export interface SeriesData {
  labels: string[];
  series: { label: string; data: (number | null)[] }[];
}

/** Up to `max` metrics, in a stable order (the keys devices report, e.g. "ndcg@10"). */
export function accuracySeries(versions: Version[], max = 4): SeriesData {
  const sorted = [...versions].sort((a, b) => a.version - b.version).filter((v) => Object.keys(v.metrics).length > 0);
  const keys = [...new Set(sorted.flatMap((v) => Object.keys(v.metrics)))].sort().slice(0, max);
  return {
    labels: sorted.map((v) => `v${v.version}`),
    series: keys.map((k) => ({ label: k, data: sorted.map((v) => v.metrics[k] ?? null) })),
  };
}

export function activitySeries(weeks: WeekActivity[]): SeriesData {
  return {
    labels: weeks.map((w) => w.week),
    series: [{ label: "Active devices", data: weeks.map((w) => w.active_devices) }],
  };
}
