import {
  allTags,
  datasetShape,
  duration,
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
import { byName, dataset, DEMO, session } from './fixtures';

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
