/**
 * `jupyter-fed:notebooks`: Launcher and command-palette entries that open the notebooks shipped
 * with jupyter-fed (the quickstart, evaluation templates), copied into the current folder first.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { fedIcon } from '../icons';
import { ensureTemplate, TEMPLATES } from '../templates';
import { CATEGORY } from './sidebar';

export const OPEN_NOTEBOOK = 'jupyter-fed:open-notebook';

function templateFor(args: ReadonlyPartialJSONObject) {
  return TEMPLATES.find(t => t.file === args.file) ?? TEMPLATES[0];
}

export const notebooksPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-fed:notebooks',
  description: 'Launcher and palette entries for the jupyter-fed quickstart and templates.',
  autoStart: true,
  optional: [ILauncher, ICommandPalette, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    browser: IDefaultFileBrowser | null
  ): void => {
    if (TEMPLATES.length === 0) {
      return;
    }
    app.commands.addCommand(OPEN_NOTEBOOK, {
      label: args => (args.isPalette ? `Open ${templateFor(args).title}` : templateFor(args).title),
      caption: args =>
        `${templateFor(args).description} (copied into the current folder as ` +
        `${templateFor(args).file} unless it is there already)`,
      icon: args => (args.isPalette ? undefined : fedIcon),
      execute: async args => {
        const template = templateFor(args);
        const folder = browser?.model.path ?? '';
        const path = await ensureTemplate(app.serviceManager.contents, template, folder);
        return app.commands.execute('docmanager:open', { path });
      }
    });
    TEMPLATES.forEach((template, rank) => {
      launcher?.add({ command: OPEN_NOTEBOOK, args: { file: template.file }, category: CATEGORY, rank });
      palette?.addItem({
        command: OPEN_NOTEBOOK,
        args: { file: template.file, isPalette: true },
        category: CATEGORY
      });
    });
  }
};
