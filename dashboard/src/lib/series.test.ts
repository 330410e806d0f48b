import type { Version } from "@/api/types";
import { accuracySeries, activitySeries } from "./series";

const v = (version: number, metrics: Record<string, number>): Version => ({
  version, round_id: version, participants: 3, num_examples: 10, metrics, reports: 3, created_at: "2026-01-01T00:00:00",
});

describe("chart series", () => {
  it("orders versions, skips those without reports and aligns metrics", () => {
    const s = accuracySeries([v(2, { "ndcg@10": 0.2, "map@10": 0.1 }), v(0, {}), v(1, { "ndcg@10": 0.1 })]);
    expect(s.labels).toEqual(["v1", "v2"]);
    expect(s.series).toEqual([
      { label: "map@10", data: [null, 0.1] },
      { label: "ndcg@10", data: [0.1, 0.2] },
    ]);
  });

  it("turns weekly activity into one bar series", () => {
    expect(activitySeries([{ week: "2026-11-30", active_devices: 6 }])).toEqual({
      labels: ["2026-11-30"],
      series: [{ label: "Active devices", data: [6] }],
    });
  });
});
