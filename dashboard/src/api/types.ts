/** Mirrors of the FL-API's response schemas (src/lerna/server/schemas.py). */

export interface Customer {
  id: number;
  email: string;
  name: string;
  company: string;
  position: string;
  created_at: string;
}

export interface TokenPublic {
  access_token: string;
  token_type: string;
  expires_in: number;
}

export interface App {
  id: number;
  name: string;
  token_prefix: string;
  created_at: string;
}

export interface AppWithToken extends App {
  token: string;
}

export interface AppStats {
  versions: number;
  total_examples: number;
  active_devices_7d: number;
  active_devices_prev_7d: number;
  enrolled_devices: number;
  last_round_participants: number;
  last_round_eligible: number;
  success_rate: number | null;
  previous_success_rate: number | null;
  predictions: number;
  /** Present only when the app runs an A/B test with a random group. */
  random_success_rate?: number | null;
}

export interface WeekActivity {
  week: string;
  active_devices: number;
}

export type PrivacyMode = "secagg+" | "two-server" | "none";

export interface PrivacySettings {
  mode: PrivacyMode;
  threshold: number;
  clip_norm: number;
  noise_multiplier: number;
  target_delta: number;
  epsilon_budget: number | null;
  expected_dropout?: number;
}

export interface Task {
  id: number;
  app_id: number;
  name: string;
  model_type: string;
  hyper: Record<string, unknown>;
  feature_schema: Record<string, unknown>;
  cohort_size: number;
  min_participants: number;
  selection_seconds: number;
  upload_seconds: number;
  local_epochs: number;
  server_learning_rate: number;
  current_version: number;
  num_items: number;
  created_at: string;
  /** Present once the server supports privacy settings per task. */
  privacy?: PrivacySettings;
  /** Deadline of each secure-aggregation stage, where the server has one. */
  stage_seconds?: number;
}

export interface TaskUpdate {
  hyper?: Record<string, unknown>;
  cohort_size?: number;
  min_participants?: number;
  selection_seconds?: number;
  upload_seconds?: number;
  local_epochs?: number;
  server_learning_rate?: number;
  stage_seconds?: number;
  privacy?: PrivacySettings;
}

export interface Version {
  version: number;
  round_id: number | null;
  participants: number;
  num_examples: number;
  metrics: Record<string, number>;
  reports: number;
  created_at: string;
}

export interface Round {
  id: number;
  number: number;
  base_version: number;
  state: string;
  cohort_size: number;
  min_participants: number;
  selected: number;
  uploads: number;
  dropouts: number;
  opened_at: string;
  closed_at: string | null;
  seconds: number | null;
  result_version: number | null;
  failure: string | null;
}

export interface Device {
  id: number;
  device_uid: string;
  platform: string;
  block_training: boolean;
  block_predictions: boolean;
  created_at: string;
  last_seen: string;
}

export type WebhookKind = "slack" | "fcm" | "https";

export interface Webhook {
  id: number;
  kind: WebhookKind;
  url: string;
  events: string[];
  enabled: boolean;
}

export interface WebhookInput {
  kind: WebhookKind;
  url: string;
  events: string[];
  enabled: boolean;
  secret?: string;
}

export interface WebhookTestResult {
  delivered: boolean;
  status_code: number | null;
  error: string | null;
}

export interface PrivacySpent {
  mode: string;
  /** null when differential privacy is off for the task. */
  epsilon: number | null;
  delta: number;
  budget: number | null;
  rounds: number;
  exhausted?: boolean;
}

export interface RecJob {
  jobId: string;
  status: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  comment: string;
}

export interface Engine {
  engineId: string;
  config: Record<string, unknown>;
  jobs: RecJob[];
  model: Record<string, number> | null;
}

export interface RecResult {
  result: { item: string; score: number; props?: Record<string, unknown> }[];
}
