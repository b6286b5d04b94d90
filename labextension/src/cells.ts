/**
 * Putting a `%%federate` cell into a notebook: below the active cell, after a
 * `%load_ext jupyter_fed` cell when the notebook has none yet.
 */
import { NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

import { cellsToInsert } from './federate';

/**
 * Insert the cells below the active one (into the first cell of an empty notebook) and select
 * the `%%federate` cell. Nothing runs: the user reads the cell first.
 */
export function insertFederateCell(panel: NotebookPanel, federate: string): void {
  const notebook = panel.content;
  const model = notebook.model;
  if (!model) {
    throw new Error('the notebook is not loaded yet');
  }
  const sources: string[] = [];
  for (let i = 0; i < model.cells.length; i++) {
    sources.push(model.cells.get(i).sharedModel.getSource());
  }
  const cells = cellsToInsert(sources, federate);
  const reuseFirst =
    model.cells.length === 1 && sources[0].trim() === '' && model.cells.get(0).type === 'code';
  cells.forEach((source, i) => {
    if (i === 0 && reuseFirst) {
      notebook.activeCellIndex = 0;
    } else {
      NotebookActions.insertBelow(notebook);
    }
    const cell = notebook.activeCell;
    if (cell && cell.model.type !== 'code') {
      NotebookActions.changeCellType(notebook, 'code');
    }
    notebook.activeCell?.model.sharedModel.setSource(source);
  });
  notebook.mode = 'command';
}
