import {
  cellsToInsert,
  chooseTarget,
  commonColumns,
  datasetRef,
  IFederatePlan,
  isTestDataset,
  LOAD_EXT,
  planFederate,
  renderFederateCell,
  yamlScalar
} from '../src/federate';
import { columns, dataset, DEMO, FEATURES } from './fixtures';

const plan = (picked = DEMO, catalog = DEMO): IFederatePlan => {
  const result = planFederate(picked, catalog);
  if (typeof result === 'string') {
    throw new Error(result);
  }
  return result;
};

describe('planFederate', () => {
  it('trains on the silos and tests on the shared test set, target y', () => {
    expect(plan()).toEqual({
      package: 'ffnet',
      datasets: ['train_silo0', 'train_silo1'],
      testDatasets: ['test'],
      rounds: 5,
      target: 'y',
      predictors: FEATURES,
      task: 'classification'
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
  it('writes the magic line and a YAML body the magic reads', () => {
    expect(renderFederateCell(plan())).toBe(
      [
        '%%federate ffnet --datasets train_silo0,train_silo1 --test-datasets test --rounds 5',
        'target: y',
        `predictors: [${FEATURES.join(', ')}]`,
        'model:',
        '  params: {hidden_layer_sizes: [16, 8], output_size: 2}',
        'ml_task: {type: classification}',
        'optimizer: {name: SGD, params: {learning_rate: 0.1}}',
        ''
      ].join('\n')
    );
  });

  it('leaves out --test-datasets when there is none, and wraps long predictor lists', () => {
    const many = Array.from({ length: 40 }, (_, i) => `feature_${i}`);
    const text = renderFederateCell({ ...plan(), testDatasets: [], predictors: many, task: 'regression' });
    expect(text.split('\n')[0]).toBe('%%federate ffnet --datasets train_silo0,train_silo1 --rounds 5');
    expect(text).toContain('output_size: 1');
    const lines = text.split('\n');
    expect(lines.every(l => l.length <= 96)).toBe(true);
    const listed = text.slice(text.indexOf('[', text.indexOf('predictors')), text.indexOf(']', text.indexOf('predictors')) + 1);
    expect(listed.replace(/\s+/g, ' ')).toBe(`[${many.join(', ')}]`);
  });
});

describe('helpers', () => {
  it('quotes YAML scalars PyYAML would not read back as the same string', () => {
    expect(yamlScalar('y')).toBe('y');
    expect(yamlScalar('x_1')).toBe('x_1');
    expect(yamlScalar('yes')).toBe("'yes'");
    expect(yamlScalar('null')).toBe("'null'");
    expect(yamlScalar('1e3')).toBe("'1e3'");
    expect(yamlScalar("it's")).toBe("'it''s'");
    expect(yamlScalar('with space')).toBe("'with space'");
  });

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
