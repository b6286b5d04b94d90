import {
  age,
  allTags,
  datasetShape,
  decisionMessage,
  duration,
  expiryText,
  grantSummary,
  packagesText,
  requestSummary,
  matchesDataset,
  planSummary,
  policySummary,
  roundProgress,
  roundText,
  runnerProblem,
  runnerSummary
} from '../src/format';
import { formatMetric, metricLabel, metricNames, primaryMetric, summarizeMetrics } from '../src/metrics';
import { IRunner } from '../src/tokens';
import { planFederate } from '../src/federate';
import { accessRequest, byName, dataset, DEMO, grant, session } from './fixtures';

const runner = (extra: Partial<IRunner> = {}): IRunner => ({
  name: 'silo0',
  url: 'https://127.0.0.1:1',
  status: 'ok',
  latency_ms: 12.4,
  datasets: 2,
  version: '0.1.0',
  error: null,
  ...extra
});

describe('runners', () => {
  it('summarises health, latency and datasets', () => {
    expect(runnerSummary(runner())).toBe('healthy · 12 ms · 2 datasets');
    expect(runnerSummary(runner({ datasets: 1 }))).toBe('healthy · 12 ms · 1 dataset');
    expect(runnerSummary(runner({ status: 'unreachable', datasets: null }))).toBe('unreachable');
  });

  it('says what is wrong in words', () => {
    expect(runnerProblem(runner())).toBeNull();
    expect(runnerProblem(runner({ status: 'unreachable', error: 'ConnectError' }))).toBe(
      'silo0 cannot be reached: ConnectError'
    );
    expect(runnerProblem(runner({ status: 'error', error: "runner 'silo0': unknown token" }))).toBe(
      "silo0 answered with an error: runner 'silo0': unknown token"
    );
  });
});

describe('datasets', () => {
  it('shape, tags and text filter', () => {
    expect(datasetShape(DEMO[1])).toBe('2,000 rows × 16 columns');
    expect(allTags([dataset('a', 'a', { tags: ['z', 'b'] }), ...DEMO])).toEqual(['b', 'demo', 'z']);
    expect(matchesDataset(DEMO[1], 'TRAIN silo0')).toBe(true);
    expect(matchesDataset(DEMO[1], 'x14')).toBe(true); // a column name
    expect(matchesDataset(DEMO[1], 'silo1')).toBe(false);
    expect(matchesDataset(DEMO[1], '  ')).toBe(true);
  });

  it('summarises a policy', () => {
    expect(
      policySummary({ allowed_packages: null, min_rows: null, min_count: 10, epsilon_budget: 10 }, 16)
    ).toBe('any package · ≥ 21 rows per contribution · counts < 10 hidden · ε budget 10');
    expect(
      policySummary({ allowed_packages: ['ffnet'], min_rows: 50, min_count: 5, epsilon_budget: 1.5 }, 16)
    ).toBe('packages: ffnet · ≥ 50 rows per contribution · counts < 5 hidden · ε budget 1.5');
  });
});

describe('sessions', () => {
  it('progress and round text', () => {
    expect(roundProgress(session('a', { current_round: 2 }))).toBeCloseTo(0.4);
    expect(roundProgress(session('a', { status: 'completed', current_round: 4 }))).toBe(1);
    expect(roundText(session('a', { current_round: 2 }))).toBe('round 2 of 5');
    expect(roundText(session('a', { status: 'created' }))).toBe('not started');
    expect(roundText(session('a', { status: 'pending' }))).toBe('waiting for clients (0 of 2)');
  });

  it('durations', () => {
    expect(duration('2026-01-01T00:00:00Z', '2026-01-01T00:00:02.5Z')).toBe('2.5 s');
    expect(duration('2026-01-01T00:00:00Z', '2026-01-01T00:02:05Z')).toBe('2 min 5 s');
    expect(duration(null, '2026-01-01T00:00:00Z')).toBe('');
  });
});

describe('metrics', () => {
  it('prefers AUC, then accuracy, then loss, and never counts', () => {
    const values = { loss: 0.6, accuracy: 0.7, roc_auc: 0.75, num_examples: 100 };
    expect(metricNames([values])).toEqual(['roc_auc', 'accuracy', 'loss']);
    expect(primaryMetric(values)).toBe('roc_auc');
    expect(summarizeMetrics(values)).toBe('AUC 0.750');
    expect(primaryMetric({ roc_auc: null, loss: 0.5 })).toBe('loss');
    expect(summarizeMetrics(null)).toBe('');
  });

  it('formats values', () => {
    expect(formatMetric(0.12345)).toBe('0.123');
    expect(formatMetric(null)).toBe('n/a');
    expect(formatMetric(1234.5)).toBe('1234.5');
    expect(formatMetric(0.00001)).toBe('1.00e-5');
    expect(metricLabel('mean_abs_error')).toBe('mean abs error');
  });
});

describe('planSummary', () => {
  it('says what the Insert button asks for, per kind of package', () => {
    const summary = (name: string, picked = DEMO, all = false): string => {
      const plan = planFederate(picked, DEMO, { package: byName(name) });
      if (typeof plan === 'string') {
        throw new Error(plan);
      }
      return planSummary(plan, all);
    };
    expect(summary('ffnet', [], true)).toBe('All datasets: train on 2 datasets, test on test, target y');
    expect(summary('ffnet', [DEMO[1]])).toBe('train on 1 dataset, target y');
    expect(summary('eda', [], true)).toBe(
      'All datasets: analyse 4 datasets with eda, one step each (no rounds)'
    );
    expect(summary('stats', [DEMO[0]])).toBe('analyse 1 dataset with stats, one step each (no rounds)');
  });
});

describe('access', () => {
  const now = Date.parse('2026-11-23T18:00:00+00:00');

  it('ages and expiries in words', () => {
    expect(age('2026-11-23T17:59:30+00:00', now)).toBe('just now');
    expect(age('2026-11-23T17:55:00+00:00', now)).toBe('5 min ago');
    expect(age('2026-11-23T15:00:00+00:00', now)).toBe('3 h ago');
    expect(age('2026-11-21T18:00:00+00:00', now)).toBe('2 d ago');
    expect(age(null, now)).toBe('');
    expect(expiryText(null, now)).toBe('no expiry');
    expect(expiryText('2026-11-23T17:00:00+00:00', now)).toBe('expired');
    expect(expiryText('2026-11-23T18:20:00+00:00', now)).toBe('expires in 20 min');
    expect(expiryText('2026-11-24T06:00:00+00:00', now)).toBe('expires in 12 h');
    expect(expiryText('2026-12-23T18:00:00+00:00', now)).toBe('expires in 30 d');
  });

  it('says what a request asks for and what a grant gives', () => {
    expect(packagesText(null)).toBe('packages the policy allows');
    expect(packagesText([])).toBe('no package');
    expect(requestSummary(accessRequest('r', { created_at: '2026-11-23T17:00:00+00:00' }), now)).toBe(
      'ffnet · ε 2 · 1 h ago'
    );
    expect(requestSummary(accessRequest('r', { packages: null, epsilon: null }), now)).toBe(
      "packages the policy allows · the policy's ε · 1 h ago"
    );
    expect(grantSummary(grant('g', { packages: ['ffnet', 'eda'], epsilon_budget: 0.5 }), now)).toBe(
      'ffnet, eda · ε budget 0.5 · no expiry'
    );
    expect(grantSummary(grant('g', { epsilon_budget: null, expires_at: '2026-11-30T18:00:00+00:00' }), now)).toBe(
      "ffnet · the policy's ε budget · expires in 7 d"
    );
  });

  it("tells the builder of a decision, with the grant's terms and the custodian's note", () => {
    const approved = accessRequest('r', { dataset: 'registry', status: 'approved', note: 'use it well' });
    expect(decisionMessage('vault', approved, grant('g', { epsilon_budget: 0.5 }), now)).toBe(
      'vault approved your request for registry (ffnet · ε budget 0.5 · no expiry): use it well'
    );
    expect(decisionMessage('vault', { ...approved, note: '' }, null, now)).toBe(
      'vault approved your request for registry'
    );
    const denied = accessRequest('r', { dataset: 'payroll', status: 'denied', note: 'not shared' });
    expect(decisionMessage('vault', denied, null, now)).toBe('vault denied your request for payroll: not shared');
  });
});
