/**
 * Catalog entries and sessions shaped like the server's (`jupyter_fed/server/README.md`).
 */
import { IColumn, IDataset, ISession } from '../src/tokens';

export const FEATURES = Array.from({ length: 15 }, (_, i) => `x${i}`);

export function columns(names: string[] = [...FEATURES, 'y'], target = 'y'): IColumn[] {
  return names.map(name => ({ name, dtype: name === target ? 'int64' : 'double', role: 'feature' }));
}

export function dataset(runner: string, name: string, extra: Partial<IDataset> = {}): IDataset {
  const cols = extra.columns ?? columns();
  return {
    runner,
    name,
    description: `${name} of ${runner}`,
    tags: ['demo'],
    format: 'parquet',
    num_rows: 2000,
    num_columns: cols.length,
    columns: cols,
    registered_at: '2026-11-23T17:00:00+00:00',
    ...extra
  };
}

/** The demo federation: a training silo and the shared test set on each of two runners. */
export const DEMO: IDataset[] = [
  dataset('silo0', 'test', { num_rows: 1000 }),
  dataset('silo0', 'train_silo0'),
  dataset('silo1', 'test', { num_rows: 1000 }),
  dataset('silo1', 'train_silo1')
];

export function session(id: string, extra: Partial<ISession> = {}): ISession {
  return {
    id,
    name: `session ${id}`,
    description: '',
    package: 'ffnet',
    status: 'running',
    error: null,
    current_round: 1,
    num_rounds: 5,
    min_num_clients: 2,
    created_at: '2026-11-23T17:00:00+00:00',
    started_at: '2026-11-23T17:00:01+00:00',
    finished_at: null,
    clients: [],
    config: { min_num_clients: 2, num_rounds: 5, model_config: {}, data_config: {}, policy: {} },
    ...extra
  };
}
