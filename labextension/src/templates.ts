/**
 * The notebooks shipped in the repository's `notebooks/` folder (bundled at build time by
 * `labextension/scripts/bundle-notebooks.mjs`), and copying one into the user's folder.
 */
import { PathExt } from '@jupyterlab/coreutils';
import { Contents } from '@jupyterlab/services';

import bundled from './_notebooks.json';

export interface INotebookTemplate {
  /** File name, e.g. `quickstart.ipynb`. */
  file: string;
  /** The first markdown heading. */
  title: string;
  /** The first paragraph, shortened. */
  description: string;
  /** The notebook (nbformat JSON), outputs cleared. */
  notebook: unknown;
}

/** Every shipped notebook, the quickstart first. */
export const TEMPLATES: ReadonlyArray<INotebookTemplate> = bundled as INotebookTemplate[];

/** The slice of `Contents.IManager` needed here (tests pass a fake). */
export type ContentsLike = Pick<Contents.IManager, 'get' | 'save'>;

/**
 * Make sure `template` exists in `folder` and return its path. An existing file is left as it
 * is: it may hold the user's own edits and outputs.
 */
export async function ensureTemplate(
  contents: ContentsLike,
  template: INotebookTemplate,
  folder: string
): Promise<string> {
  const path = folder ? PathExt.join(folder, template.file) : template.file;
  try {
    await contents.get(path, { content: false });
    return path;
  } catch {
    // Not there yet: copy it below.
  }
  await contents.save(path, {
    type: 'notebook',
    format: 'json',
    content: template.notebook
  });
  return path;
}
