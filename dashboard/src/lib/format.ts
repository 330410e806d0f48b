/** Pure formatting helpers: no DOM, no HTTP, so they are tested without a browser. */

export function percent(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return `${(value * 100).toFixed(digits)}%`;
}

export function count(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return new Intl.NumberFormat("en-US").format(value);
}

export function decimal(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return value.toFixed(digits);
}

export interface Trend {
  direction: "up" | "down" | "flat" | "none";
  /** Human text, e.g. "+12.5% vs previous". */
  label: string;
}

/** Relative change of `current` against `previous`, as shown under a stat card. */
export function trend(current: number | null, previous: number | null, what = "previous"): Trend {
  if (current === null || previous === null) return { direction: "none", label: `no ${what} figure` };
  if (previous === 0) {
    if (current === 0) return { direction: "flat", label: `unchanged vs ${what}` };
    return { direction: "up", label: `up from 0 (${what})` };
  }
  const change = (current - previous) / Math.abs(previous);
  if (Math.abs(change) < 0.0005) return { direction: "flat", label: `unchanged vs ${what}` };
  const sign = change > 0 ? "+" : "−";
  return {
    direction: change > 0 ? "up" : "down",
    label: `${sign}${Math.abs(change * 100).toFixed(1)}% vs ${what}`,
  };
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso.endsWith("Z") || /[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z");
  if (Number.isNaN(d.getTime())) return "—";
  return d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Share of the budget spent, clamped to [0, 1]; null when there is no budget. */
export function budgetShare(spent: number | null, budget: number | null): number | null {
  if (spent === null || budget === null || budget <= 0) return null;
  return Math.min(1, Math.max(0, spent / budget));
}
