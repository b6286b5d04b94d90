/**
 * A ready `%%federate` cell from catalog entries, for any package the coordinator runs: which
 * datasets train and which test (packages with rounds) or which are analysed (one-shot packages
 * such as eda and stats), the target and predictors a package reads, and the package's own
 * example body. Pure functions, so what the button inserts is unit-tested without a browser.
 * The magic itself lives in `jupyter_fed/magics/_federate.py`.
 */
import { IColumn, IDataset, IPackage } from './tokens';
import { entry, flowList, IBodyEntry, mergeBody, yamlScalar } from './yamlbody';

/** The line that loads the magics; `%%federate` must be the first line of its own cell. */
export const LOAD_EXT = '%load_ext jupyter_fed';

const TEST_WORDS = /(^|[_\-.])(test|tests|testing|eval|evaluation|holdout|valid|validation)([_\-.]|$)/i;
const TEST_TAGS = new Set(['test', 'eval', 'evaluation', 'holdout', 'validation']);
const TARGET_NAMES = ['y', 'target', 'label', 'labels', 'outcome', 'class'];

/** The cells to insert: the magic's loader only when no existing cell loads it already. */
export function cellsToInsert(existing: ReadonlyArray<string>, federate: string): string[] {
  const loaded = existing.some(source =>
    source.split('\n').some(line => line.trim() === LOAD_EXT)
  );
  return loaded ? [federate] : [LOAD_EXT, federate];
}

/** `true` for a dataset meant for evaluation, judged by its name and tags. */
export function isTestDataset(dataset: IDataset): boolean {
  return (
    TEST_WORDS.test(dataset.name) || dataset.tags.some(tag => TEST_TAGS.has(tag.toLowerCase()))
  );
}

/** `name` when only one runner has a dataset of that name, else `runner/name`. */
export function datasetRef(dataset: IDataset, catalog: ReadonlyArray<IDataset>): string {
  const same = catalog.filter(d => d.name === dataset.name);
  return same.length > 1 ? `${dataset.runner}/${dataset.name}` : dataset.name;
}

/** Columns every dataset has, in the order of the first one. */
export function commonColumns(datasets: ReadonlyArray<IDataset>): IColumn[] {
  if (datasets.length === 0) {
    return [];
  }
  const [first, ...rest] = datasets;
  return first.columns.filter(col =>
    rest.every(d => d.columns.some(other => other.name === col.name))
  );
}

/** The target column: `y` if present, then other usual names, else the last feature column. */
export function chooseTarget(columns: ReadonlyArray<IColumn>): IColumn | null {
  for (const wanted of TARGET_NAMES) {
    const hit = columns.find(c => c.name.toLowerCase() === wanted && c.role !== 'id');
    if (hit) {
      return hit;
    }
  }
  const features = columns.filter(c => c.role !== 'id');
  return features.length > 0 ? features[features.length - 1] : null;
}

/** The package `%%federate` cells default to. */
export const DEFAULT_PACKAGE = 'ffnet';

/**
 * ffnet as `GET /packages` describes it (`jupyter_fed/packages/ffnet/__init__.py`): what the
 * sidebar offers when an older server has no such route, and before the list has loaded.
 */
export const FFNET_PACKAGE: IPackage = {
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
};

/** What the `%%federate` cell asks for. */
export interface IFederatePlan {
  /** The package's canonical name. */
  package: string;
  /** One client each: the training datasets, or for a one-shot package the datasets analysed. */
  datasets: string[];
  /** Empty, one for all clients, or one per training dataset; empty for one-shot packages. */
  testDatasets: string[];
  /** Federated rounds; `null` for a one-shot package (no `--rounds`). */
  rounds: number | null;
  /** The target column, when the package reads one (`target` among its `data_keys`). */
  target: string | null;
  /** Predictor columns, when the package reads them (`predictors` among its `data_keys`). */
  predictors: string[];
  /** Judged from the target's type; `null` without a target. */
  task: 'classification' | 'regression' | null;
  /** The package's example body, merged under the inferred keys. */
  example: string;
}

/**
 * Plan a session from the datasets the user picked (all of the catalog when none are).
 *
 * For a package with rounds, datasets named or tagged like test/eval/holdout evaluate and the
 * others train; a test dataset with the same name on every runner is given once (each client
 * evaluates on its own runner's copy). The target and predictors are inferred only when the
 * package reads them. A one-shot package (`rounds: false`, e.g. eda or stats) analyses every
 * dataset, test-like ones included.
 *
 * @param picked - the datasets ticked in the list
 * @param catalog - every dataset (to tell when a name needs its runner)
 * @param options - `package`: as `GET /packages` describes it (default ffnet);
 *   `rounds`: federated rounds (default 5)
 * @returns the plan, or a sentence saying why there is none
 */
export function planFederate(
  picked: ReadonlyArray<IDataset>,
  catalog: ReadonlyArray<IDataset>,
  options: { package?: IPackage; rounds?: number } = {}
): IFederatePlan | string {
  const pkg = options.package ?? FFNET_PACKAGE;
  const pool = picked.length > 0 ? picked : catalog;
  const base = {
    package: pkg.name,
    example: pkg.example,
    testDatasets: [],
    target: null,
    task: null
  };
  if (!pkg.rounds) {
    if (pool.length === 0) {
      return 'no datasets: connect a runner that has some, or pick them in the list';
    }
    const datasets = pool.map(d => datasetRef(d, catalog));
    return { ...base, datasets, rounds: null, predictors: [] };
  }
  let train = pool.filter(d => !isTestDataset(d));
  let tests = pool.filter(isTestDataset);
  if (train.length === 0 && tests.length > 0 && picked.length > 0) {
    // Only test-like datasets were picked: the user means to train on them.
    [train, tests] = [tests, []];
  }
  if (train.length === 0) {
    return 'no training datasets: connect a runner that has some, or pick them in the list';
  }
  const columns = inferColumns(train, pkg.data_keys);
  if (typeof columns === 'string') {
    return columns;
  }
  const { target, predictors } = columns;
  return {
    ...base,
    datasets: train.map(d => datasetRef(d, catalog)),
    testDatasets: pairTests(train, tests),
    rounds: options.rounds ?? 5,
    target: target?.name ?? null,
    predictors,
    task: target === null ? null : /int|bool/i.test(target.dtype) ? 'classification' : 'regression'
  };
}

/** The target and predictors among the training datasets' common columns, as far as wanted. */
function inferColumns(
  train: ReadonlyArray<IDataset>,
  dataKeys: ReadonlyArray<string>
): { target: IColumn | null; predictors: string[] } | string {
  const wantsTarget = dataKeys.includes('target');
  const wantsPredictors = dataKeys.includes('predictors');
  if (!wantsTarget && !wantsPredictors) {
    return { target: null, predictors: [] };
  }
  const columns = commonColumns(train);
  const target = wantsTarget ? chooseTarget(columns) : null;
  const predictors = wantsPredictors
    ? columns.filter(c => c.name !== target?.name && c.role !== 'id').map(c => c.name)
    : [];
  if ((wantsTarget && target === null) || (!wantsTarget && predictors.length === 0)) {
    return `the datasets ${train.map(d => d.name).join(', ')} have no column in common`;
  }
  if (wantsPredictors && predictors.length === 0) {
    return `no predictor columns besides the target ${target?.name}`;
  }
  return { target, predictors };
}

function pairTests(train: ReadonlyArray<IDataset>, tests: ReadonlyArray<IDataset>): string[] {
  if (tests.length === 0) {
    return [];
  }
  const names = [...new Set(tests.map(t => t.name))];
  if (names.length === 1) {
    return names;
  }
  // Several test datasets: one per training dataset, preferring the same runner.
  return train.map(d => {
    const local = tests.find(t => t.runner === d.runner) ?? tests[0];
    return `${local.runner}/${local.name}`;
  });
}

const PYTHON_KEYWORDS = new Set(
  ('False None True and as assert async await break class continue def del elif else except ' +
    'finally for from global if import in is lambda nonlocal not or pass raise return try while ' +
    'with yield').split(' ')
);

/** The variable a one-shot cell stores its session in (`-o`): the package's name, made valid. */
export function outputVariable(packageName: string): string {
  const name = packageName.replace(/\W/g, '_') || 'session';
  return /^\d/.test(name) || PYTHON_KEYWORDS.has(name) ? `_${name}` : name;
}

/**
 * The example adapted to the target. ffnet's example is written for classification (two
 * outputs, the default task); a target that looks continuous asks for regression instead, as
 * this button always did. Kept here until `GET /packages` describes an example per task.
 */
function exampleForTask(plan: IFederatePlan): { example: string; extra: IBodyEntry[] } {
  if (plan.package !== 'ffnet' || plan.task !== 'regression') {
    return { example: plan.example, extra: [] };
  }
  return {
    example: plan.example.replace(/\boutput_size:[ \t]*\d+/g, 'output_size: 1'),
    extra: [entry('ml_task', 'ml_task: {type: regression}')]
  };
}

/** The cell's YAML body: the inferred target and predictors, then the package's example. */
export function cellBody(plan: IFederatePlan): string {
  const { example, extra } = exampleForTask(plan);
  const inferred: IBodyEntry[] = [];
  if (plan.target !== null) {
    inferred.push(entry('target', `target: ${yamlScalar(plan.target)}`));
  }
  if (plan.predictors.length > 0) {
    inferred.push(entry('predictors', flowList('predictors', plan.predictors)));
  }
  return mergeBody(example, [...inferred, ...extra]);
}

/** The cell text: the magic line, then a YAML body the magic reads (see `%%federate?`). */
export function renderFederateCell(plan: IFederatePlan): string {
  const line = ['%%federate', plan.package, '--datasets', plan.datasets.join(',')];
  if (plan.testDatasets.length > 0) {
    line.push('--test-datasets', plan.testDatasets.join(','));
  }
  if (plan.rounds !== null) {
    line.push('--rounds', String(plan.rounds));
  } else {
    line.push('-o', outputVariable(plan.package));
  }
  return `${line.join(' ')}\n${cellBody(plan)}`;
}
