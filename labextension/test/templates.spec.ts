import { Contents } from '@jupyterlab/services';

import { ContentsLike, ensureTemplate, TEMPLATES } from '../src/templates';

function fakeContents(existing: string[]): { contents: ContentsLike; saved: string[] } {
  const saved: string[] = [];
  const contents = {
    get: async (path: string) => {
      if (!existing.includes(path)) {
        throw new Error(`no ${path}`);
      }
      return { path } as Contents.IModel;
    },
    save: async (path: string, options: Partial<Contents.IModel>) => {
      expect(options.type).toBe('notebook');
      saved.push(path);
      return { path } as Contents.IModel;
    }
  } as ContentsLike;
  return { contents, saved };
}

describe('templates', () => {
  it('ship the quickstart first, outputs cleared', () => {
    expect(TEMPLATES[0].file).toBe('quickstart.ipynb');
    expect(TEMPLATES[0].title).toBe('jupyter-fed quickstart');
    const cells = (TEMPLATES[0].notebook as { cells: { cell_type: string; outputs?: unknown[] }[] }).cells;
    expect(cells.filter(c => c.cell_type === 'code').every(c => c.outputs?.length === 0)).toBe(true);
  });

  it('ship the data-provider evaluation template, titled and described for the Launcher', () => {
    const template = TEMPLATES.find(t => t.file === 'evaluation_template.ipynb');
    expect(template?.title).toBe('Data-provider evaluation template');
    expect(template?.description).toMatch(/^Is a data provider's dataset worth it for my task\?/);
    const cells = (template?.notebook as { cells: { cell_type: string; outputs?: unknown[] }[] }).cells;
    expect(cells.filter(c => c.cell_type === 'code').every(c => c.outputs?.length === 0)).toBe(true);
  });

  it('copies a template into the folder when it is missing', async () => {
    const { contents, saved } = fakeContents([]);
    await expect(ensureTemplate(contents, TEMPLATES[0], 'work')).resolves.toBe('work/quickstart.ipynb');
    expect(saved).toEqual(['work/quickstart.ipynb']);
  });

  it('leaves an existing copy alone (it may hold the user’s edits)', async () => {
    const { contents, saved } = fakeContents(['quickstart.ipynb']);
    await expect(ensureTemplate(contents, TEMPLATES[0], '')).resolves.toBe('quickstart.ipynb');
    expect(saved).toEqual([]);
  });
});
