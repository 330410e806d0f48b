/**
 * The ML task editor's model: the editable fields as strings (what inputs hold), their bounds
 * (the same as TaskConfig in src/lerna/server/schemas.py, so a person sees the reason before the
 * server refuses), and the conversion to the PATCH body.
 */
import type { PrivacySettings, Task, TaskUpdate } from "@/api/types";

export interface TaskForm {
  cohort_size: string;
  min_participants: string;
  selection_seconds: string;
  upload_seconds: string;
  local_epochs: string;
  server_learning_rate: string;
  hyper: string;
  privacy: null | {
    mode: PrivacySettings["mode"];
    threshold: string;
    clip_norm: string;
    noise_multiplier: string;
    target_delta: string;
    epsilon_budget: string;
  };
}

export type FormErrors = Partial<Record<string, string>>;

interface Bound {
  label: string;
  integer: boolean;
  min: number;
  /** true: the minimum itself is refused (gt rather than ge). */
  exclusiveMin?: boolean;
  max: number;
  exclusiveMax?: boolean;
}

export const BOUNDS: Record<string, Bound> = {
  cohort_size: { label: "Cohort size", integer: true, min: 1, max: 100_000 },
  min_participants: { label: "Minimum participants", integer: true, min: 1, max: 100_000 },
  selection_seconds: { label: "Selection deadline", integer: false, min: 0, exclusiveMin: true, max: 86_400 },
  upload_seconds: { label: "Upload deadline", integer: false, min: 0, exclusiveMin: true, max: 604_800 },
  local_epochs: { label: "Local epochs", integer: true, min: 1, max: 50 },
  server_learning_rate: { label: "Server learning rate", integer: false, min: 0, exclusiveMin: true, max: 10 },
  "privacy.threshold": { label: "Aggregation threshold", integer: true, min: 2, max: 100_000 },
  "privacy.clip_norm": { label: "Clip norm", integer: false, min: 0, exclusiveMin: true, max: 1e6 },
  "privacy.noise_multiplier": { label: "Noise multiplier", integer: false, min: 0, max: 1e3 },
  "privacy.target_delta": { label: "Target delta", integer: false, min: 0, exclusiveMin: true, max: 1, exclusiveMax: true },
  "privacy.epsilon_budget": { label: "Epsilon budget", integer: false, min: 0, exclusiveMin: true, max: 1e6 },
};

export function toForm(task: Task): TaskForm {
  const p = task.privacy;
  return {
    cohort_size: String(task.cohort_size),
    min_participants: String(task.min_participants),
    selection_seconds: String(task.selection_seconds),
    upload_seconds: String(task.upload_seconds),
    local_epochs: String(task.local_epochs),
    server_learning_rate: String(task.server_learning_rate),
    hyper: JSON.stringify(task.hyper, null, 2),
    privacy: p
      ? {
          mode: p.mode,
          threshold: String(p.threshold),
          clip_norm: String(p.clip_norm),
          noise_multiplier: String(p.noise_multiplier),
          target_delta: String(p.target_delta),
          epsilon_budget: p.epsilon_budget === null ? "" : String(p.epsilon_budget),
        }
      : null,
  };
}

/** A message for one numeric field, or null when the value is acceptable. */
export function checkNumber(key: string, raw: string): string | null {
  const b = BOUNDS[key];
  if (!b) return null;
  const text = raw.trim();
  if (text === "") return `${b.label} is required.`;
  const value = Number(text);
  if (!Number.isFinite(value)) return `${b.label} must be a number.`;
  if (b.integer && !Number.isInteger(value)) return `${b.label} must be a whole number.`;
  if (b.exclusiveMin ? value <= b.min : value < b.min) {
    return `${b.label} must be ${b.exclusiveMin ? "greater than" : "at least"} ${b.min}.`;
  }
  if (b.exclusiveMax ? value >= b.max : value > b.max) {
    return `${b.label} must be ${b.exclusiveMax ? "less than" : "at most"} ${b.max.toLocaleString("en-US")}.`;
  }
  return null;
}

export function validate(form: TaskForm): FormErrors {
  const errors: FormErrors = {};
  for (const key of Object.keys(BOUNDS)) {
    if (key.startsWith("privacy.")) continue;
    const msg = checkNumber(key, form[key as keyof TaskForm] as string);
    if (msg) errors[key] = msg;
  }
  if (!errors.cohort_size && !errors.min_participants) {
    if (Number(form.min_participants) > Number(form.cohort_size)) {
      errors.min_participants = "Minimum participants cannot exceed the cohort size.";
    }
  }
  try {
    const hyper: unknown = JSON.parse(form.hyper || "{}");
    if (!hyper || typeof hyper !== "object" || Array.isArray(hyper)) {
      errors.hyper = 'Hyper-parameters must be a JSON object, e.g. {"learning_rate": 0.1}.';
    }
  } catch {
    errors.hyper = "Hyper-parameters are not valid JSON.";
  }
  if (form.privacy) {
    for (const field of ["threshold", "clip_norm", "noise_multiplier", "target_delta"] as const) {
      const msg = checkNumber(`privacy.${field}`, form.privacy[field]);
      if (msg) errors[`privacy.${field}`] = msg;
    }
    if (form.privacy.epsilon_budget.trim() !== "") {
      const msg = checkNumber("privacy.epsilon_budget", form.privacy.epsilon_budget);
      if (msg) errors["privacy.epsilon_budget"] = msg;
      else if (Number(form.privacy.noise_multiplier) === 0) {
        errors["privacy.epsilon_budget"] = "An epsilon budget needs a noise multiplier above 0.";
      }
    }
  }
  return errors;
}

/** The PATCH body; call only when `validate` returned no errors. */
export function toUpdate(form: TaskForm, original: Task): TaskUpdate {
  const update: TaskUpdate = {
    cohort_size: Number(form.cohort_size),
    min_participants: Number(form.min_participants),
    selection_seconds: Number(form.selection_seconds),
    upload_seconds: Number(form.upload_seconds),
    local_epochs: Number(form.local_epochs),
    server_learning_rate: Number(form.server_learning_rate),
    hyper: JSON.parse(form.hyper || "{}") as Record<string, unknown>,
  };
  if (form.privacy && original.privacy) {
    update.privacy = {
      ...original.privacy,
      mode: form.privacy.mode,
      threshold: Number(form.privacy.threshold),
      clip_norm: Number(form.privacy.clip_norm),
      noise_multiplier: Number(form.privacy.noise_multiplier),
      target_delta: Number(form.privacy.target_delta),
      epsilon_budget: form.privacy.epsilon_budget.trim() === "" ? null : Number(form.privacy.epsilon_budget),
    };
  }
  return update;
}
