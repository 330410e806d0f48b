import type { Task } from "@/api/types";
import { checkNumber, toForm, toUpdate, validate } from "./taskForm";

const task: Task = {
  id: 1, app_id: 1, name: "movies", model_type: "fcf", hyper: { dim: 32 }, feature_schema: {},
  cohort_size: 100, min_participants: 10, selection_seconds: 60, upload_seconds: 600, local_epochs: 1,
  server_learning_rate: 1, current_version: 3, num_items: 50, created_at: "2026-01-01T00:00:00",
  privacy: { mode: "secagg+", threshold: 10, clip_norm: 1, noise_multiplier: 1, target_delta: 1e-5, epsilon_budget: 8, expected_dropout: 0.1 },
};

describe("task form", () => {
  it("accepts the task as it is and sends nothing when nothing changed", () => {
    const form = toForm(task);
    expect(validate(form)).toEqual({});
    expect(toUpdate(form, task)).toEqual({});
  });

  it("explains each bound the server enforces", () => {
    expect(checkNumber("cohort_size", "0")).toBe("Cohort size must be at least 1.");
    expect(checkNumber("cohort_size", "2.5")).toBe("Cohort size must be a whole number.");
    expect(checkNumber("local_epochs", "51")).toBe("Local epochs must be at most 50.");
    expect(checkNumber("server_learning_rate", "0")).toBe("Server learning rate must be greater than 0.");
    expect(checkNumber("selection_seconds", "")).toBe("Selection deadline is required.");
    expect(checkNumber("upload_seconds", "abc")).toBe("Upload deadline must be a number.");
    expect(checkNumber("privacy.target_delta", "1")).toBe("Target delta must be less than 1.");
    expect(checkNumber("cohort_size", 5)).toBeNull(); // number inputs may hand over numbers
  });

  it("checks the rules that tie fields together", () => {
    const form = { ...toForm(task), cohort_size: "5", min_participants: "9", hyper: "[1]" };
    const errors = validate(form);
    expect(errors.min_participants).toBe("Minimum participants cannot exceed the cohort size.");
    expect(errors.hyper).toMatch(/must be a JSON object/);
    const privacy = { ...toForm(task).privacy!, threshold: "20", noise_multiplier: "0" };
    const more = validate({ ...toForm(task), privacy });
    expect(more["privacy.threshold"]).toMatch(/cannot exceed the minimum participants/);
    expect(more["privacy.epsilon_budget"]).toBe("An epsilon budget needs a noise multiplier above 0.");
  });

  it("sends only the fields that changed", () => {
    const form = { ...toForm(task), cohort_size: "200", hyper: '{"dim": 16}' };
    expect(toUpdate(form, task)).toEqual({ cohort_size: 200, hyper: { dim: 16 } });
    const privacy = { ...toForm(task).privacy!, epsilon_budget: "" };
    expect(toUpdate({ ...toForm(task), privacy }, task).privacy).toEqual({ ...task.privacy, epsilon_budget: null });
  });
});
