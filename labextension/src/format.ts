/**
 * Words and numbers for the panel: pure functions, shared by the views and tested on their own.
 */
import type { IFederatePlan } from './federate';
import {
  IAccessRequest,
  IDataset,
  IDatasetPolicy,
  IGrant,
  IRunner,
  ISession,
  TERMINAL_STATUSES
} from './tokens';

const integer = new Intl.NumberFormat('en-US');

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${integer.format(n)} ${n === 1 ? one : many}`;
}

/** `"healthy · 12 ms · 2 datasets"`. */
export function runnerSummary(runner: IRunner): string {
  const parts: string[] = [];
  parts.push(
    runner.status === 'ok' ? 'healthy' : runner.status === 'unreachable' ? 'unreachable' : 'error'
  );
  if (runner.status === 'ok' && typeof runner.latency_ms === 'number') {
    parts.push(`${Math.round(runner.latency_ms)} ms`);
  }
  if (typeof runner.datasets === 'number') {
    parts.push(plural(runner.datasets, 'dataset'));
  }
  return parts.join(' · ');
}

/** What went wrong with a runner, as a sentence. */
export function runnerProblem(runner: IRunner): string | null {
  if (runner.status === 'ok') {
    return null;
  }
  const why = runner.error ? `: ${runner.error}` : '';
  return runner.status === 'unreachable'
    ? `${runner.name} cannot be reached${why}`
    : `${runner.name} answered with an error${why}`;
}

/** `"2,000 rows × 16 columns"`. */
export function datasetShape(dataset: IDataset): string {
  return `${plural(dataset.num_rows, 'row')} × ${plural(dataset.num_columns, 'column')}`;
}

/** Does the dataset match a free-text filter (name, runner, description, tags, columns)? */
export function matchesDataset(dataset: IDataset, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) {
    return true;
  }
  const haystack = [
    dataset.name,
    dataset.runner,
    dataset.description,
    ...dataset.tags,
    ...dataset.columns.map(c => c.name)
  ]
    .join(' ')
    .toLowerCase();
  return words.every(w => haystack.includes(w));
}

/** Every tag in the catalog, sorted. */
export function allTags(datasets: ReadonlyArray<IDataset>): string[] {
  return [...new Set(datasets.flatMap(d => d.tags))].sort((a, b) => a.localeCompare(b));
}

/** `"packages: any · ≥ 21 rows per contribution · counts < 10 hidden · ε budget 10"`. */
export function policySummary(policy: IDatasetPolicy, numColumns: number): string {
  const packages =
    policy.allowed_packages === null
      ? 'any package'
      : policy.allowed_packages.length === 0
        ? 'no package allowed'
        : `packages: ${policy.allowed_packages.join(', ')}`;
  const minRows = Math.max(policy.min_count, policy.min_rows ?? numColumns + 5);
  return [
    packages,
    `≥ ${integer.format(minRows)} rows per contribution`,
    `counts < ${policy.min_count} hidden`,
    `ε budget ${policy.epsilon_budget}`,
    ...(policy.require_dp ? ['DP only'] : []),
    ...(policy.exact_only ? ['no filtered statistics'] : [])
  ].join(' · ');
}

export function isTerminal(session: ISession): boolean {
  return TERMINAL_STATUSES.includes(session.status);
}

/** Fraction of rounds done, 0…1 (1 once completed). */
export function roundProgress(session: ISession): number {
  if (session.status === 'completed') {
    return 1;
  }
  if (session.num_rounds <= 0) {
    return 0;
  }
  return Math.max(0, Math.min(1, session.current_round / session.num_rounds));
}

/** `"round 3 of 5"`, or where a session that has not started stands. */
export function roundText(session: ISession): string {
  if (session.status === 'created') {
    return 'not started';
  }
  if (session.status === 'pending') {
    const joined = session.clients.length;
    return `waiting for clients (${joined} of ${session.min_num_clients})`;
  }
  return `round ${Math.min(session.current_round, session.num_rounds)} of ${session.num_rounds}`;
}

/** Seconds between two ISO times as `"12.3 s"` / `"4 min 5 s"`, or `""`. */
export function duration(from: string | null, to: string | null): string {
  if (!from || !to) {
    return '';
  }
  const seconds = (Date.parse(to) - Date.parse(from)) / 1000;
  if (!Number.isFinite(seconds) || seconds < 0) {
    return '';
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

/**
 * What the Insert button would ask for, e.g. `"train on 2 datasets, test on test, target y"` or
 * `"analyse 4 datasets with eda, one step each (no rounds)"`; `all` when nothing is picked.
 */
export function planSummary(plan: IFederatePlan, all: boolean): string {
  const prefix = all ? 'All datasets: ' : '';
  if (plan.rounds === null) {
    const what = plural(plan.datasets.length, 'dataset');
    return `${prefix}analyse ${what} with ${plan.package}, one step each (no rounds)`;
  }
  const parts = [`train on ${plural(plan.datasets.length, 'dataset')}`];
  if (plan.testDatasets.length > 0) {
    parts.push(`test on ${plan.testDatasets.join(', ')}`);
  }
  if (plan.target !== null) {
    parts.push(`target ${plan.target}`);
  }
  return prefix + parts.join(', ');
}

// access: requests and grants -------------------------------------------------------------------

/** `"just now"`, `"5 min ago"`, `"3 h ago"`, `"2 d ago"` (empty for an unreadable time). */
export function age(iso: string | null, now: number = Date.now()): string {
  const then = iso ? Date.parse(iso) : NaN;
  if (!Number.isFinite(then)) {
    return '';
  }
  const seconds = Math.max(0, (now - then) / 1000);
  if (seconds < 60) {
    return 'just now';
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min ago`;
  }
  if (seconds < 86400) {
    return `${Math.floor(seconds / 3600)} h ago`;
  }
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** Packages asked for or granted; `null` leaves it to the dataset's policy. */
export function packagesText(packages: ReadonlyArray<string> | null): string {
  if (packages === null) {
    return 'packages the policy allows';
  }
  return packages.length === 0 ? 'no package' : packages.join(', ');
}

/** `"ε 2"`, or the policy's budget when none was named. */
export function epsilonText(epsilon: number | null): string {
  return epsilon === null ? "the policy's ε" : `ε ${epsilon}`;
}

/** `"expires in 29 d"`, `"expires in 5 h"`, `"expired"`, `"no expiry"`. */
export function expiryText(expiresAt: string | null, now: number = Date.now()): string {
  if (!expiresAt) {
    return 'no expiry';
  }
  const seconds = (Date.parse(expiresAt) - now) / 1000;
  if (!Number.isFinite(seconds)) {
    return '';
  }
  if (seconds <= 0) {
    return 'expired';
  }
  if (seconds < 3600) {
    return `expires in ${Math.max(1, Math.round(seconds / 60))} min`;
  }
  if (seconds < 2 * 86400) {
    return `expires in ${Math.round(seconds / 3600)} h`;
  }
  return `expires in ${Math.round(seconds / 86400)} d`;
}

/** `"ffnet · ε 2 · 5 min ago"`: what a request asks for, and since when. */
export function requestSummary(request: IAccessRequest, now: number = Date.now()): string {
  return [packagesText(request.packages), epsilonText(request.epsilon), age(request.created_at, now)]
    .filter(Boolean)
    .join(' · ');
}

/** `"ffnet · ε budget 1 · expires in 30 d"`. */
export function grantSummary(grant: IGrant, now: number = Date.now()): string {
  const budget =
    grant.epsilon_budget === null ? "the policy's ε budget" : `ε budget ${grant.epsilon_budget}`;
  return [packagesText(grant.packages), budget, expiryText(grant.expires_at, now)]
    .filter(Boolean)
    .join(' · ');
}

/**
 * The notification for a builder, e.g. `"silo0 approved your request for train (ffnet · ε budget
 * 0.5 · no expiry): enjoy"` or `"silo0 denied your request for payroll: not shared"`.
 */
export function decisionMessage(
  runner: string,
  request: IAccessRequest,
  grant: IGrant | null,
  now: number = Date.now()
): string {
  const note = request.note ? `: ${request.note}` : '';
  if (request.status !== 'approved') {
    return `${runner} denied your request for ${request.dataset}${note}`;
  }
  const terms = grant ? ` (${grantSummary(grant, now)})` : '';
  return `${runner} approved your request for ${request.dataset}${terms}${note}`;
}
