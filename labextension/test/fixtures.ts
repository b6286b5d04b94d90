/**
 * Catalog entries and sessions shaped like the server's (`jupyter_fed/server/README.md`).
 */
import { IAccessRequest, IColumn, IDataset, IGrant, IPackage, ISession } from '../src/tokens';

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

/** `GET /packages` as the server answers it (`describe_packages()` of the built-in packages). */
export const PACKAGES: IPackage[] = [
  {
    name: 'eda',
    aliases: ['iai_eda'],
    description: 'differentially private histograms and summary statistics per column',
    roles: ['data'],
    rounds: false,
    data_keys: ['columns'],
    per_dataset: true,
    example: 'epsilon: 1.0\ncolumns: []'
  },
  {
    name: 'ffnet',
    aliases: ['iai_ffnet', 'ffn', 'iai_ffn'],
    description: 'feed-forward neural network (classification or regression), FedAvg family',
    roles: ['train', 'test'],
    rounds: true,
    data_keys: ['predictors', 'target'],
    per_dataset: false,
    example:
      'target: y\nmodel: {params: {hidden_layer_sizes: [16, 8], output_size: 2}}\n' +
      'optimizer: {name: SGD, params: {learning_rate: 0.1, momentum: 0.9}}'
  },
  {
    name: 'stats',
    aliases: ['statistics', 'psr', 'iai_stats'],
    description:
      'exact mergeable statistics (count, means, cross-products, conditioned on binary columns), ' +
      'peer exploration, OLS and PSR contracts',
    roles: ['data'],
    rounds: false,
    data_keys: ['columns', 'filter', 'condition_on', 'batch_rows'],
    per_dataset: false,
    example: 'columns: []\ncontract: COUNT(x0) > 100'
  }
];

/** A package with rounds as the server describes one, e.g. `pkg('glm', {data_keys: [...]})`. */
export function pkg(name: string, extra: Partial<IPackage> = {}): IPackage {
  return {
    name,
    aliases: [],
    description: `${name} package`,
    roles: ['train', 'test'],
    rounds: true,
    data_keys: ['predictors', 'target'],
    per_dataset: false,
    example: '',
    ...extra
  };
}

export const byName = (name: string): IPackage => {
  const found = PACKAGES.find(p => p.name === name);
  if (!found) {
    throw new Error(`no package ${name} in PACKAGES`);
  }
  return found;
};

/** An access request as the runner answers it (`Grants._request_dict`). */
export function accessRequest(id: string, extra: Partial<IAccessRequest> = {}): IAccessRequest {
  return {
    request_id: id,
    user: 'analyst',
    dataset: 'train_silo0',
    packages: ['ffnet'],
    epsilon: 2,
    reason: 'churn model',
    status: 'pending',
    created_at: '2026-11-23T17:00:00+00:00',
    decided_by: null,
    decided_at: null,
    note: '',
    grant_id: null,
    ...extra
  };
}

/** A grant as the runner answers it (`Grants._row_dict`). */
export function grant(id: string, extra: Partial<IGrant> = {}): IGrant {
  return {
    grant_id: id,
    user: 'analyst',
    dataset: 'train_silo0',
    packages: ['ffnet'],
    epsilon_budget: 0.5,
    granted_by: 'admin',
    created_at: '2026-11-23T18:00:00+00:00',
    expires_at: null,
    revoked_at: null,
    request_id: null,
    note: '',
    active: true,
    ...extra
  };
}
