import { load } from 'js-yaml';

import { entry, flowList, mergeBody, topLevelEntries, yamlScalar } from '../src/yamlbody';

describe('yamlScalar and flowList', () => {
  it('quotes YAML scalars PyYAML would not read back as the same string', () => {
    expect(yamlScalar('y')).toBe('y');
    expect(yamlScalar('x_1')).toBe('x_1');
    expect(yamlScalar('yes')).toBe("'yes'");
    expect(yamlScalar('null')).toBe("'null'");
    expect(yamlScalar('1e3')).toBe("'1e3'");
    expect(yamlScalar("it's")).toBe("'it''s'");
    expect(yamlScalar('with space')).toBe("'with space'");
  });

  it('writes an empty list and wraps a long one', () => {
    expect(flowList('columns', [])).toBe('columns: []');
    const many = Array.from({ length: 30 }, (_, i) => `column_${i}`);
    const text = flowList('columns', many, 40);
    expect(text.split('\n').every(line => line.length <= 40)).toBe(true);
    expect(load(text)).toEqual({ columns: many });
  });
});

describe('topLevelEntries', () => {
  it('keeps nested lines, block scalars and comments with the key above them', () => {
    const text = [
      '# options',
      'model:',
      '  params: {a: 1}',
      '',
      'contract: |',
      '  COUNT(x0) > 100',
      '  # not a comment: part of the contract',
      "'quoted key': 1",
      'list: [a,',
      '  b]'
    ].join('\n');
    const entries = topLevelEntries(text);
    expect(entries?.map(e => e.key)).toEqual([null, 'model', 'contract', 'quoted key', 'list']);
    expect(entries?.[2].lines).toEqual([
      'contract: |',
      '  COUNT(x0) > 100',
      '  # not a comment: part of the contract'
    ]);
  });

  it('refuses what is not a plain block mapping', () => {
    expect(topLevelEntries('{a: 1}')).toBeNull();
    expect(topLevelEntries('- a\n- b')).toBeNull();
    expect(topLevelEntries('---\na: 1')).toBeNull();
    expect(topLevelEntries('  a: 1')).toBeNull();
    expect(topLevelEntries('http://x')).toBeNull();
    expect(topLevelEntries('')).toEqual([{ key: null, lines: [''] }]);
  });
});

describe('mergeBody', () => {
  it('puts the inferred keys first and drops the example keys they replace', () => {
    const example = 'target: outcome\nmodel:\n  depth: 2\ncontract: |\n  COUNT(x) > 1\n';
    const body = mergeBody(example, [entry('target', 'target: y'), entry('predictors', 'predictors: [a, b]')]);
    expect(body).toBe('target: y\npredictors: [a, b]\nmodel:\n  depth: 2\ncontract: |\n  COUNT(x) > 1\n');
    expect(load(body)).toEqual({
      target: 'y',
      predictors: ['a', 'b'],
      model: { depth: 2 },
      contract: 'COUNT(x) > 1\n'
    });
  });

  it('keeps a leading comment on top, and is empty when there is nothing to write', () => {
    expect(mergeBody('# EDA\nepsilon: 1.0\n\n', [entry('columns', 'columns: [a]')])).toBe(
      '# EDA\ncolumns: [a]\nepsilon: 1.0\n'
    );
    expect(mergeBody('', [])).toBe('');
    expect(mergeBody('- not a mapping', [entry('target', 'target: y')])).toBe('target: y\n');
  });
});
