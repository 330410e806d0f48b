import { budgetShare, count, duration, percent, trend } from "./format";

describe("format", () => {
  it("shows a dash for missing figures instead of NaN", () => {
    expect(percent(null)).toBe("—");
    expect(percent(Number.NaN)).toBe("—");
    expect(count(undefined)).toBe("—");
    expect(duration(null)).toBe("—");
  });

  it("formats percentages, counts and durations", () => {
    expect(percent(0.1234)).toBe("12.3%");
    expect(count(1234567)).toBe("1,234,567");
    expect(duration(12.34)).toBe("12.3 s");
    expect(duration(125)).toBe("2 min 5 s");
    expect(duration(7260)).toBe("2 h 1 min");
  });

  it("describes the trend against the previous figure", () => {
    expect(trend(0.6, 0.5, "previous version")).toEqual({ direction: "up", label: "+20.0% vs previous version" });
    expect(trend(40, 50)).toEqual({ direction: "down", label: "−20.0% vs previous" });
    expect(trend(5, 5).direction).toBe("flat");
    expect(trend(3, 0).direction).toBe("up");
    expect(trend(null, 0.5).direction).toBe("none");
  });

  it("clamps the budget share and has none without a budget", () => {
    expect(budgetShare(2, 8)).toBe(0.25);
    expect(budgetShare(10, 8)).toBe(1);
    expect(budgetShare(2, null)).toBeNull();
    expect(budgetShare(null, 8)).toBeNull();
  });
});
