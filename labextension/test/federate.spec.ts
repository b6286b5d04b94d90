import { load } from 'js-yaml';

import {
  cellBody,
  cellsToInsert,
  chooseTarget,
  commonColumns,
  datasetRef,
  FFNET_PACKAGE,
  IFederatePlan,
  isTestDataset,
  LOAD_EXT,
  outputVariable,
  planFederate,
  renderFederateCell
} from '../src/federate';
import { IPackage } from '../src/tokens';
import { byName, columns, dataset, DEMO, FEATURES, PACKAGES, pkg } from './fixtures';

const plan = (picked = DEMO, catalog = DEMO, pack?: IPackage): IFederatePlan => {
  const result = planFederate(picked, catalog, { package: pack });
  if (typeof result === 'string') {
    throw new Error(result);
  }
  return result;
};

/** The body of a cell, read as the magic reads it (a mapping). */
const bodyOf = (cell: string): Record<string, unknown> =>
  load(cell.slice(cell.indexOf('\n') + 1)) as Record<string, unknown>;

describe('planFederate', () => {
  it('trains on the silos and tests on the shared test set, target y', () => {
    expect(plan()).toEqual({
      package: 'ffnet',
      datasets: ['train_silo0', 'train_silo1'],
      testDatasets: ['test'],
      rounds: 5,
      target: 'y',
      predictors: FEATURES,
      task: 'classification',
      example: FFNET_PACKAGE.example
    });
  });

  it('uses the whole catalog when nothing is picked', () => {
    expect(plan([]).datasets).toEqual(['train_silo0', 'train_silo1']);
  });

  it('names the runner when two runners hold a dataset of the same name', () => {
    const catalog = [dataset('a', 'cohort'), dataset('b', 'cohort')];
    expect(plan(catalog, catalog).datasets).toEqual(['a/cohort', 'b/cohort']);
  });

  it('pairs differently named test sets with the training data of their runner', () => {
    const catalog = [
      dataset('a', 'train_a'),
      dataset('b', 'train_b'),
      dataset('b', 'holdout_b'),
      dataset('a', 'eval_a')
    ];
    expect(plan(catalog, catalog).testDatasets).toEqual(['a/eval_a', 'b/holdout_b']);
  });

  it('trains on test-like datasets when only those were picked', () => {
    const picked = [DEMO[0]];
    expect(plan(picked).datasets).toEqual(['silo0/test']);
    expect(plan(picked).testDatasets).toEqual([]);
  });

  it('uses only the columns every training dataset has, and skips identifier columns', () => {
    const a = dataset('a', 'a', { columns: [...columns(['id', 'x0', 'x1', 'y'])] });
    a.columns[0].role = 'id';
    const b = dataset('b', 'b', { columns: columns(['x1', 'x0', 'y', 'extra']) });
    expect(plan([a, b], [a, b]).predictors).toEqual(['x0', 'x1']);
  });

  it('makes a float target a regression', () => {
    const cols = columns(['x0', 'price'], 'none');
    const d = dataset('a', 'houses', { columns: cols });
    expect(plan([d], [d])).toMatchObject({ target: 'price', task: 'regression' });
  });

  it('explains why there is no plan', () => {
    expect(planFederate([], [])).toMatch(/no training datasets/);
    const a = dataset('a', 'a', { columns: columns(['p', 'y']) });
    const b = dataset('b', 'b', { columns: columns(['q']) });
    expect(planFederate([a, b], [a, b])).toMatch(/no column in common/);
    const lonely = dataset('a', 'a', { columns: columns(['y']) });
    expect(planFederate([lonely], [lonely])).toMatch(/no predictor columns/);
  });
});

describe('renderFederateCell', () => {
  it("writes the magic line, then the inferred target and predictors over ffnet's example", () => {
    expect(renderFederateCell(plan())).toBe(
      [
        '%%federate ffnet --datasets train_silo0,train_silo1 --test-datasets test --rounds 5',
        'target: y',
        `predictors: [${FEATURES.join(', ')}]`,
        'model: {params: {hidden_layer_sizes: [16, 8], output_size: 2}}',
        'optimizer: {name: SGD, params: {learning_rate: 0.1, momentum: 0.9}}',
        ''
      ].join('\n')
    );
  });

  it('asks ffnet for regression, one output, when the target looks continuous', () => {
    const d = dataset('a', 'houses', { columns: columns(['x0', 'x1', 'price'], 'none') });
    const body = bodyOf(renderFederateCell(plan([d], [d], byName('ffnet'))));
    expect(body).toEqual({
      target: 'price',
      predictors: ['x0', 'x1'],
      ml_task: { type: 'regression' },
      model: { params: { hidden_layer_sizes: [16, 8], output_size: 1 } },
      optimizer: { name: 'SGD', params: { learning_rate: 0.1, momentum: 0.9 } }
    });
  });

  it('leaves out --test-datasets when there is none, and wraps long predictor lists', () => {
    const many = Array.from({ length: 40 }, (_, i) => `feature_${i}`);
    const text = renderFederateCell({ ...plan(), testDatasets: [], predictors: many, task: 'regression' });
    expect(text.split('\n')[0]).toBe('%%federate ffnet --datasets train_silo0,train_silo1 --rounds 5');
    expect(bodyOf(text).predictors).toEqual(many);
    expect(text).toContain('output_size: 1');
    expect(text).toContain('ml_task: {type: regression}');
    const lines = text.split('\n');
    expect(lines.every(l => l.length <= 96)).toBe(true);
    const listed = text.slice(text.indexOf('[', text.indexOf('predictors')), text.indexOf(']', text.indexOf('predictors')) + 1);
    expect(listed.replace(/\s+/g, ' ')).toBe(`[${many.join(', ')}]`);
  });
});

describe('cells for every package', () => {
  it('gives a one-shot package every dataset, test-like ones included, and no rounds', () => {
    // Prepare: nothing picked (the whole catalog), then two picked.
    const all = plan([], DEMO, byName('eda'));
    const two = plan([DEMO[0], DEMO[3]], DEMO, byName('eda'));

    // Execute
    const cell = renderFederateCell(all);

    // Assert
    expect(all).toMatchObject({ rounds: null, testDatasets: [], target: null, predictors: [] });
    expect(cell).toBe(
      '%%federate eda --datasets silo0/test,train_silo0,silo1/test,train_silo1 -o eda\n' +
        'epsilon: 1.0\ncolumns: []\n'
    );
    expect(renderFederateCell(two).split('\n')[0]).toBe(
      '%%federate eda --datasets silo0/test,train_silo1 -o eda'
    );
    expect(cell).not.toMatch(/--rounds|--test-datasets|--strategy/);
  });

  it("writes stats' example as it is, a YAML mapping", () => {
    const cell = renderFederateCell(plan([DEMO[1]], DEMO, byName('stats')));
    expect(cell.split('\n')[0]).toBe('%%federate stats --datasets train_silo0 -o stats');
    expect(bodyOf(cell)).toEqual({ columns: [], contract: 'COUNT(x0) > 100' });
  });

  it('infers only the keys a package with rounds reads', () => {
    // linear_inference reads a target but names its predictors in keys of its own.
    const linear = pkg('linear_inference', {
      data_keys: ['target', 'shared_predictors', 'chunked_predictors'],
      example: 'target: y\nshared_predictors: [x0, x1]\nchunked_predictors: [x2, x3]'
    });
    const cell = renderFederateCell(plan(DEMO, DEMO, linear));
    expect(cell.split('\n')[0]).toBe(
      '%%federate linear_inference --datasets train_silo0,train_silo1 --test-datasets test --rounds 5'
    );
    expect(bodyOf(cell)).toEqual({
      target: 'y',
      shared_predictors: ['x0', 'x1'],
      chunked_predictors: ['x2', 'x3']
    });

    // A package that reads neither gets its example only, and needs no common columns.
    const free = pkg('free', { data_keys: ['columns'], example: 'alpha: 0.5' });
    const a = dataset('a', 'a', { columns: columns(['p']) });
    const b = dataset('b', 'b', { columns: columns(['q']) });
    expect(renderFederateCell(plan([a, b], [a, b], free))).toBe(
      '%%federate free --datasets a,b --rounds 5\nalpha: 0.5\n'
    );
  });

  it("replaces the example's target with the inferred one, keeping its other keys", () => {
    const glm = pkg('glm', {
      example: 'target: outcome  # the column to model\nfamily: binomial\nl2: 0.01'
    });
    const cell = renderFederateCell(plan(DEMO, DEMO, glm));
    expect(cell).not.toContain('outcome');
    expect(bodyOf(cell)).toEqual({ target: 'y', predictors: FEATURES, family: 'binomial', l2: 0.01 });
  });

  it('writes a body every package reads as a YAML mapping, whatever the column names', () => {
    const odd = ['yes', 'null', '1e3', "it's", 'with space', 'x:y', '#tag', 'a,b', '[x]'];
    const d = dataset('r', 'odd', { columns: columns([...odd, 'y']) });
    const catalogs = [DEMO, [d]];
    const packages = [
      ...PACKAGES,
      pkg('glm', { example: 'family: gaussian\ncontract: |\n  COUNT(x0) > 1\n  MEAN(y) < 2' })
    ];
    for (const catalog of catalogs) {
      for (const p of packages) {
        const body = bodyOf(renderFederateCell(plan(catalog, catalog, p)));
        expect(typeof body).toBe('object');
        if (p.rounds && p.data_keys.includes('predictors')) {
          expect(body.target).toBe('y');
          expect(body.predictors).toEqual(commonColumns(catalog).map(c => c.name).filter(n => n !== 'y'));
        }
      }
    }
  });

  it('explains why a one-shot package has no cell', () => {
    expect(planFederate([], [], { package: byName('eda') })).toMatch(/^no datasets/);
  });

  it('leaves out an example that is not a plain mapping rather than write bad YAML', () => {
    const flow = pkg('flow', { example: '{a: 1}' });
    expect(cellBody(plan(DEMO, DEMO, flow))).toBe(`target: y\npredictors: [${FEATURES.join(', ')}]\n`);
  });

  it('stores a one-shot session in a variable named after the package', () => {
    expect(outputVariable('eda')).toBe('eda');
    expect(outputVariable('my-pca')).toBe('my_pca');
    expect(outputVariable('2d')).toBe('_2d');
    expect(outputVariable('lambda')).toBe('_lambda');
  });

  it('falls back to ffnet as the server describes it', () => {
    expect(FFNET_PACKAGE).toEqual(byName('ffnet'));
  });
});

describe('helpers', () => {
  it('finds test datasets by name and tag', () => {
    expect(isTestDataset(dataset('a', 'test'))).toBe(true);
    expect(isTestDataset(dataset('a', 'cohort_eval'))).toBe(true);
    expect(isTestDataset(dataset('a', 'contest'))).toBe(false);
    expect(isTestDataset(dataset('a', 'cohort', { tags: ['Holdout'] }))).toBe(true);
  });

  it('chooses y, then usual target names, then the last column', () => {
    expect(chooseTarget(columns(['a', 'y', 'b']))?.name).toBe('y');
    expect(chooseTarget(columns(['a', 'Label', 'b']))?.name).toBe('Label');
    expect(chooseTarget(columns(['a', 'b']))?.name).toBe('b');
    expect(chooseTarget([])).toBeNull();
  });

  it('references and common columns', () => {
    expect(datasetRef(DEMO[1], DEMO)).toBe('train_silo0');
    expect(datasetRef(DEMO[0], DEMO)).toBe('silo0/test');
    expect(commonColumns([])).toEqual([]);
  });

  it('adds the loader cell only when no cell loads the magics', () => {
    expect(cellsToInsert([''], 'F')).toEqual([LOAD_EXT, 'F']);
    expect(cellsToInsert(['import x\n%load_ext jupyter_fed\n'], 'F')).toEqual(['F']);
    expect(cellsToInsert(['# %load_ext jupyter_fed is needed'], 'F')).toEqual([LOAD_EXT, 'F']);
  });
});
