/**
 * A ready `%%federate` cell from catalog entries: which datasets train and which test, the target
 * and predictors, and a small FFNet configuration. Pure functions, so what the button inserts is
 * unit-tested without a browser. The magic itself lives in `jupyter_fed/magics/_federate.py`.
 */
import { IColumn, IDataset } from './tokens';

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

/** What the `%%federate` cell asks for. */
export interface IFederatePlan {
  package: string;
  /** Training dataset references, one client each. */
  datasets: string[];
  /** Empty, one for all clients, or one per training dataset. */
  testDatasets: string[];
  rounds: number;
  target: string;
  predictors: string[];
  task: 'classification' | 'regression';
}

/**
 * Plan a session from the datasets the user picked (all of the catalog when none are).
 *
 * Datasets named or tagged like test/eval/holdout evaluate; the others train. A test dataset with
 * the same name on every runner is given once (each client evaluates on its own runner's copy).
 *
 * @returns the plan, or a sentence saying why there is none
 */
export function planFederate(
  picked: ReadonlyArray<IDataset>,
  catalog: ReadonlyArray<IDataset>,
  options: { package?: string; rounds?: number } = {}
): IFederatePlan | string {
  const pool = picked.length > 0 ? picked : catalog;
  let train = pool.filter(d => !isTestDataset(d));
  let tests = pool.filter(isTestDataset);
  if (train.length === 0 && tests.length > 0 && picked.length > 0) {
    // Only test-like datasets were picked: the user means to train on them.
    [train, tests] = [tests, []];
  }
  if (train.length === 0) {
    return 'no training datasets: connect a runner that has some, or pick them in the list';
  }
  const columns = commonColumns(train);
  const target = chooseTarget(columns);
  if (target === null) {
    return `the datasets ${train.map(d => d.name).join(', ')} have no column in common`;
  }
  const predictors = columns
    .filter(c => c.name !== target.name && c.role !== 'id')
    .map(c => c.name);
  if (predictors.length === 0) {
    return `no predictor columns besides the target ${target.name}`;
  }
  return {
    package: options.package ?? 'ffnet',
    datasets: train.map(d => datasetRef(d, catalog)),
    testDatasets: pairTests(train, tests),
    rounds: options.rounds ?? 5,
    target: target.name,
    predictors,
    task: /int|bool/i.test(target.dtype) ? 'classification' : 'regression'
  };
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

// What PyYAML (the magic's parser) reads as something other than a string; it keeps y and n as text.
const YAML_SPECIAL = /^(yes|no|true|false|on|off|null|~)$/i;
const YAML_NUMBER = /^[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?$/;

/** A YAML scalar: plain when it would read back as the same string, else single-quoted. */
export function yamlScalar(value: string): string {
  const plain =
    /^[A-Za-z_][A-Za-z0-9_\-.]*$/.test(value) &&
    !YAML_SPECIAL.test(value) &&
    !YAML_NUMBER.test(value);
  return plain ? value : `'${value.replace(/'/g, "''")}'`;
}

/** A YAML flow list, wrapped so no line passes `width` characters. */
function flowList(key: string, items: ReadonlyArray<string>, width = 96): string {
  const lines: string[] = [];
  let line = `${key}: [`;
  items.forEach((item, i) => {
    const piece = yamlScalar(item) + (i < items.length - 1 ? ',' : ']');
    if (line.length + piece.length + 1 > width && !line.endsWith('[')) {
      lines.push(line);
      line = '  ' + piece;
    } else {
      line += (line.endsWith('[') ? '' : ' ') + piece;
    }
  });
  if (items.length === 0) {
    line += ']';
  }
  lines.push(line);
  return lines.join('\n');
}

/** The cell text: the magic line, then a YAML body the magic reads (see `%%federate?`). */
export function renderFederateCell(plan: IFederatePlan): string {
  const line = ['%%federate', plan.package, '--datasets', plan.datasets.join(',')];
  if (plan.testDatasets.length > 0) {
    line.push('--test-datasets', plan.testDatasets.join(','));
  }
  line.push('--rounds', String(plan.rounds));
  const outputs = plan.task === 'classification' ? 2 : 1;
  return [
    line.join(' '),
    `target: ${yamlScalar(plan.target)}`,
    flowList('predictors', plan.predictors),
    'model:',
    `  params: {hidden_layer_sizes: [16, 8], output_size: ${outputs}}`,
    `ml_task: {type: ${plan.task}}`,
    'optimizer: {name: SGD, params: {learning_rate: 0.1}}',
    ''
  ].join('\n');
}
