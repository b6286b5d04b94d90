/**
 * What the jupyter_fed server extension sends and accepts, as TypeScript interfaces.
 *
 * These mirror the Python wire models (`jupyter_fed/server/README.md`, `jupyter_fed/wire/models.py`,
 * `jupyter_fed/coordinator/service.py`); field names keep the server's snake_case so a response
 * is used as it arrives, without a mapping layer that could drift.
 */

/** Everything jupyter-fed serves lives under this path (after the server's base URL). */
export const API_NAMESPACE = 'jupyter-fed/api/v1';

/** `GET /status`. */
export interface IServerStatus {
  version: string;
  api: string;
  /** The coordinator has booted. */
  ready: boolean;
}

/** The body of every error reply: `{code, message, hint[, details]}`. */
export interface IErrorBody {
  code: string;
  message: string;
  hint: string;
  details?: { field: string; error: string }[];
}

// runners ---------------------------------------------------------------------------------------

export type RunnerStatus = 'ok' | 'unreachable' | 'error';

/** One row of `GET /runners` (tokens never leave the server). */
export interface IRunner {
  name: string;
  url: string;
  status: RunnerStatus;
  latency_ms: number | null;
  /** Number of datasets; `null` when the runner could not be asked. */
  datasets: number | null;
  version: string | null;
  error: string | null;
}

/** `POST /runners`: connect a runner by address and token. */
export interface IRunnerSpec {
  name: string;
  url: string;
  token: string;
  /** `sha256:…` certificate fingerprint the runner printed; required for https. */
  fingerprint?: string | null;
}

/** `POST /invitations`: redeem a custodian's one-time invitation. */
export interface IInvitation {
  blob: string;
  password: string;
  /** Local name for the runner; the invitation's own name when omitted. */
  name?: string | null;
}

/** Reply of `POST /runners` and `POST /invitations`. */
export interface IRunnerAdded {
  name: string;
  url: string;
  fingerprint?: string | null;
  version: string | null;
  latency_ms: number | null;
}

// datasets --------------------------------------------------------------------------------------

/** `ColumnInfo`: `dtype` is the Arrow type (`int64`, `double`, `bool`, …). */
export interface IColumn {
  name: string;
  dtype: string;
  /** `feature`, or `id` for an identifier column that is not used as a number. */
  role: string;
  /** `binary`, `label`, `integer`, `numeric` or `id`, decided at registration. */
  kind?: string | null;
  /** Public bounds the custodian declared (DP releases clip to them at no cost). */
  bounds?: [number, number] | null;
}

/** One catalog entry (`DatasetInfo` plus the runner that holds it); never any rows. */
export interface IDataset {
  runner: string;
  name: string;
  description: string;
  tags: string[];
  format: string;
  num_rows: number;
  num_columns: number;
  columns: IColumn[];
  registered_at: string;
}

/** `GET /datasets`: unreachable runners are listed in `errors`, not fatal. */
export interface ICatalog {
  datasets: IDataset[];
  errors: { runner: string; message: string }[];
}

/** A dataset's privacy policy (`jupyter_fed.runner.policy.DatasetPolicy`). */
export interface IDatasetPolicy {
  /** Packages allowed on the dataset; `null` allows all. */
  allowed_packages: string[] | null;
  /** Fewest rows behind any contribution (never below `min_count`); `null` means columns + 5. */
  min_rows: number | null;
  /** Small-count threshold: counts below it are suppressed. */
  min_count: number;
  /** Differential-privacy epsilon each principal may spend on the dataset's file. */
  epsilon_budget: number;
  /** Only steps that spend epsilon may read the dataset. */
  require_dp?: boolean;
  /** Statistics with a row filter are refused (otherwise answered with differential privacy). */
  exact_only?: boolean;
  /** Vertical feature importance may release per-row SHAP values (default: only means). */
  release_shap_details?: boolean;
}

/** `POST /runners/{name}/admin`: one call to a runner's API with the stored token. */
export interface IAdminCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  params?: Record<string, unknown> | null;
}

// packages --------------------------------------------------------------------------------------

/**
 * One row of `GET /packages` (`jupyter_fed.packages.registry.describe_packages`): a package the
 * coordinator runs, and how a `%%federate` cell reads for it (`Notebook` in the registry).
 */
export interface IPackage {
  /** Canonical name, e.g. `ffnet`, `eda`. */
  name: string;
  /** Other accepted names, e.g. the reference SDK's `iai_ffnet`. */
  aliases: string[];
  description: string;
  /** Dataset roles of a client, the first required: `train`, `test`; `data` for one-shot ones. */
  roles: string[];
  /**
   * The session has rounds: `--rounds`, `--test-datasets` and `--strategy` apply. `false` for a
   * one-shot package (eda, stats), whose cell takes only `--datasets`.
   */
  rounds: boolean;
  /** Keys of a flat cell body that go to `data_config` (e.g. `predictors`, `target`; `columns`). */
  data_keys: string[];
  /** `data_config` is keyed by dataset name; flat `data_keys` apply to every dataset. */
  per_dataset: boolean;
  /** A short YAML cell body that works on typical data. */
  example: string;
}

// sessions --------------------------------------------------------------------------------------

export type SessionStatus =
  | 'created'
  | 'pending'
  | 'running'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'interrupted';

/** Statuses after which a session changes no more (unless resumed, for `interrupted`). */
export const TERMINAL_STATUSES: ReadonlyArray<SessionStatus> = [
  'completed',
  'failed',
  'cancelled',
  'interrupted'
];

/** A client of a session: one runner and its datasets by role. */
export interface ISessionClient {
  client_id: string;
  runner: string;
  datasets: Record<string, string | null>;
  status: string;
  error: string | null;
  /** Live while a step runs. */
  round?: number;
  step?: string;
  progress?: number;
}

export interface ISessionConfig {
  min_num_clients: number;
  num_rounds: number;
  model_config: Record<string, unknown>;
  data_config: Record<string, unknown>;
  policy: Record<string, unknown>;
}

/** `session` in the REST contract. */
export interface ISession {
  id: string;
  name: string;
  description: string;
  package: string;
  status: SessionStatus;
  error: string | null;
  current_round: number;
  num_rounds: number;
  min_num_clients: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  clients: ISessionClient[];
  config: ISessionConfig;
  /** Session-level warnings, e.g. a model that is not learning (collapsed to one class). */
  warnings?: string[];
}

/**
 * Metric name → value for one model. A value undefined for a round (the server's `NaN`) arrives
 * here as `null`: `requestAPI` reads the server's JSON leniently.
 */
export type MetricValues = Record<string, number | null>;

/**
 * `GET /sessions/{id}/metrics`: entry 0 is the initial model. Sessions that train no model
 * (record linkage) describe the session as a whole: `client_metrics` is then
 * `{client: {train|test: {n_records, n_overlapped_records, frac_overlapped}}}` and
 * `federated_metrics` is empty.
 */
export interface ISessionMetrics {
  session_id: string;
  federated_metrics: MetricValues[];
  client_metrics: Record<string, MetricValues>[] | Record<string, Record<string, MetricValues>>;
  latest_global_model_federated_loss?: number | null;
}

/** One line of `GET /sessions/{id}/logs`. */
export interface ILogEntry {
  id: number;
  at: string;
  level: string;
  client: string | null;
  message: string;
}

// event stream ----------------------------------------------------------------------------------

/** First frame: the subscription is in place. */
export interface IReadyEvent {
  type: 'ready';
  session_id: string | null;
}

/** A round was committed (the final evaluation arrives as round `num_rounds + 1`). */
export interface IRoundEvent {
  type: 'round';
  session_id: string;
  round: number;
  num_rounds: number;
  /** Index of the model the metrics describe (0 = initial model). */
  model_round: number;
  federated_metrics: MetricValues;
  dropped: string[];
}

export interface IStatusEvent {
  type: 'status';
  session_id: string;
  status: SessionStatus;
  error?: string | null;
}

export interface ILogEvent {
  type: 'log';
  session_id: string;
  level: string;
  client: string | null;
  message: string;
}

/** A session-level warning, e.g. the model is not learning; also in `ISession.warnings`. */
export interface IWarningEvent {
  type: 'warning';
  session_id: string;
  kind: string;
  message: string;
}

export type FedEvent = IReadyEvent | IRoundEvent | IStatusEvent | ILogEvent | IWarningEvent;

// access: grants and the request queue at a runner (`jupyter_fed/runner/grants.py`) -------------

/** `GET /v1/tokens/self`: what the stored token is (the secret itself never comes back). */
export interface ITokenInfo {
  token_id: string;
  user: string;
  scopes: string[];
  expires_at?: string | null;
  description?: string;
}

export type AccessRequestStatus = 'pending' | 'approved' | 'denied' | 'withdrawn';

/** One access request (`GET /v1/requests`, `GET /v1/requests/self`). */
export interface IAccessRequest {
  request_id: string;
  user: string;
  dataset: string;
  /** Packages (or `package.step`) asked for; `null`: what the dataset's policy allows. */
  packages: string[] | null;
  /** Epsilon asked for; `null`: the policy's budget. */
  epsilon: number | null;
  reason: string;
  status: AccessRequestStatus;
  created_at: string;
  decided_by: string | null;
  decided_at: string | null;
  /** The custodian's word on the decision. */
  note: string;
  /** The grant an approval made. */
  grant_id: string | null;
  /** Custodian view only: whether a dataset of that name is registered. */
  dataset_exists?: boolean;
}

/** One grant (`GET /v1/grants`, `GET /v1/grants/self`). */
export interface IGrant {
  grant_id: string;
  user: string;
  dataset: string;
  /** `null`: what the dataset's policy allows. */
  packages: string[] | null;
  /** `null`: the policy's budget. */
  epsilon_budget: number | null;
  granted_by: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  request_id: string | null;
  note: string;
  active: boolean;
}

/** `POST /v1/requests`: a builder asks for a dataset. */
export interface INewAccessRequest {
  dataset: string;
  packages?: string[] | null;
  epsilon?: number | null;
  reason?: string;
}

/** `POST /v1/requests/{id}/approve`: fields given replace what was asked. */
export interface IApproval {
  packages?: string[] | null;
  epsilon?: number | null;
  expires_days?: number | null;
  note?: string;
}
