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
  /** "" when the server has no secure-aggregation stages. */
  stage_seconds: string;
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
  stage_seconds: { label: "Stage deadline", integer: false, min: 0, exclusiveMin: true, max: 86_400 },
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
    stage_seconds: task.stage_seconds === undefined ? "" : String(task.stage_seconds),
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
export function checkNumber(key: string, raw: string | number): string | null {
  const b = BOUNDS[key];
  if (!b) return null;
  const text = String(raw).trim();
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
    if (key === "stage_seconds" && String(form.stage_seconds) === "") continue;
    const msg = checkNumber(key, form[key as keyof TaskForm] as string);
    if (msg) errors[key] = msg;
  }
  if (!errors.cohort_size && !errors.min_participants) {
    if (Number(form.min_participants) > Number(form.cohort_size)) {
      errors.min_participants = "Minimum participants cannot exceed the cohort size.";
    }
  }
  try {
    const hyper: unknown = JSON.parse(form.hyper.trim() || "{}");
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
    if (
      !errors["privacy.threshold"] && !errors.min_participants && form.privacy.mode !== "none" &&
      Number(form.privacy.threshold) > Number(form.min_participants)
    ) {
      errors["privacy.threshold"] = "The threshold cannot exceed the minimum participants: a round could never be unmasked.";
    }
    if (String(form.privacy.epsilon_budget).trim() !== "") {
      const msg = checkNumber("privacy.epsilon_budget", form.privacy.epsilon_budget);
      if (msg) errors["privacy.epsilon_budget"] = msg;
      else if (Number(form.privacy.noise_multiplier) === 0) {
        errors["privacy.epsilon_budget"] = "An epsilon budget needs a noise multiplier above 0.";
      }
    }
  }
  return errors;
}

/**
 * The PATCH body with only what changed (PATCH semantics: an untouched section, e.g. privacy, is
 * not rewritten). Call only when `validate` returned no errors.
 */
export function toUpdate(form: TaskForm, original: Task): TaskUpdate {
  const update: TaskUpdate = {};
  const numeric = ["cohort_size", "min_participants", "selection_seconds", "upload_seconds", "local_epochs", "server_learning_rate"] as const;
  for (const key of numeric) {
    const value = Number(form[key]);
    if (value !== original[key]) update[key] = value;
  }
  if (String(form.stage_seconds) !== "" && Number(form.stage_seconds) !== original.stage_seconds) {
    update.stage_seconds = Number(form.stage_seconds);
  }
  const hyper = JSON.parse(form.hyper.trim() || "{}") as Record<string, unknown>;
  if (JSON.stringify(hyper) !== JSON.stringify(original.hyper)) update.hyper = hyper;
  if (form.privacy && original.privacy) {
    const privacy: PrivacySettings = {
      ...original.privacy,
      mode: form.privacy.mode,
      threshold: Number(form.privacy.threshold),
      clip_norm: Number(form.privacy.clip_norm),
      noise_multiplier: Number(form.privacy.noise_multiplier),
      target_delta: Number(form.privacy.target_delta),
      epsilon_budget: String(form.privacy.epsilon_budget).trim() === "" ? null : Number(form.privacy.epsilon_budget),
    };
    if (JSON.stringify(privacy) !== JSON.stringify(original.privacy)) update.privacy = privacy;
  }
  return update;
}
