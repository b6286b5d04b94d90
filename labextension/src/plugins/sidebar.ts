/**
 * `jupyter-fed:sidebar`: the left-sidebar panel and its commands (show, refresh, insert a
 * `%%federate` cell).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { AccessModel, IDecision } from '../access';
import { insertFederateCell } from '../cells';
import { planFederate, renderFederateCell } from '../federate';
import { decisionMessage } from '../format';
import { fedIcon } from '../icons';
import { FedModel } from '../model';
import { createFedPanel, PANEL_ID } from '../panel';

export const CATEGORY = 'Federated learning';

export namespace CommandIDs {
  export const show = 'jupyter-fed:show-panel';
  export const refresh = 'jupyter-fed:refresh';
  export const insert = 'jupyter-fed:insert-federate-cell';
}

/** The active notebook, or a new one in the file browser's folder with the default kernel. */
async function targetNotebook(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  browser: IDefaultFileBrowser | null
): Promise<NotebookPanel> {
  const current = tracker?.currentWidget;
  if (current) {
    return current;
  }
  await app.serviceManager.kernelspecs.ready;
  const kernelName = app.serviceManager.kernelspecs.specs?.default;
  const created = (await app.commands.execute('notebook:create-new', {
    cwd: browser?.model.path ?? '',
    kernelName
  })) as NotebookPanel;
  await created.context.ready;
  return created;
}

/** Tell a builder that a custodian decided one of their requests (it stays in the centre). */
function notifyDecisions(app: JupyterFrontEnd, decisions: IDecision[]): void {
  for (const { runner, request, grant } of decisions) {
    const message = decisionMessage(runner, request, grant);
    const options = {
      autoClose: 15000,
      actions: [{ label: 'Show', callback: () => app.shell.activateById(PANEL_ID) }]
    };
    if (request.status === 'approved') {
      Notification.success(message, options);
    } else {
      Notification.warning(message, options);
    }
  }
}

export const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-fed:sidebar',
  description:
    'Runners, the dataset catalog, federated sessions, grants and access requests in the left sidebar.',
  autoStart: true,
  optional: [INotebookTracker, ICommandPalette, ILayoutRestorer, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    browser: IDefaultFileBrowser | null
  ): void => {
    const model = new FedModel({ isVisible: () => panel.isVisible });
    // Polls even while the panel is closed, so a builder hears of a decision and a custodian
    // sees the count of waiting requests on the sidebar's tab.
    const access = new AccessModel(model);
    access.decided.connect((_, decisions) => notifyDecisions(app, decisions));

    const insertCell = async (text: string): Promise<void> => {
      const notebook = await targetNotebook(app, tracker, browser);
      app.shell.activateById(notebook.id);
      insertFederateCell(notebook, text);
    };
    const confirm = async (title: string, body: string, accept: string): Promise<boolean> => {
      const result = await showDialog({
        title,
        body,
        buttons: [Dialog.cancelButton({ label: 'Keep' }), Dialog.warnButton({ label: accept })]
      });
      return result.button.accept;
    };

    const panel = createFedPanel(model, access, { confirm, insertCell });
    app.shell.add(panel, 'left', { rank: 850 });
    restorer?.add(panel, PANEL_ID);
    void app.restored.then(() => access.start());

    app.commands.addCommand(CommandIDs.show, {
      label: 'Show Federated Learning Sidebar',
      icon: fedIcon,
      execute: () => app.shell.activateById(PANEL_ID)
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Runners, Datasets, Sessions and Access',
      execute: () => model.refreshAll().then(() => access.refresh(true))
    });
    app.commands.addCommand(CommandIDs.insert, {
      label: 'Insert %%federate Cell for All Datasets',
      caption: 'Train across every connected runner: a ready %%federate cell in the notebook',
      execute: async () => {
        if (!model.loaded('datasets')) {
          await model.refreshDatasets();
        }
        const plan = planFederate([], model.datasets);
        if (typeof plan === 'string') {
          await showDialog({
            title: 'No %%federate cell',
            body: plan,
            buttons: [Dialog.okButton()]
          });
          return;
        }
        await insertCell(renderFederateCell(plan));
      }
    });
    for (const command of [CommandIDs.show, CommandIDs.refresh, CommandIDs.insert]) {
      palette?.addItem({ command, category: CATEGORY });
    }
  }
};
