/**
 * The sidebar widget: a `SidePanel` whose accordion holds the Runners, Datasets, Sessions and
 * Access sections, each a React view over the shared `FedModel` (and `AccessModel`).
 */
import {
  ReactWidget,
  refreshIcon,
  SidePanel,
  Toolbar,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { AccordionPanel, Widget } from '@lumino/widgets';
import { Message } from '@lumino/messaging';
import React from 'react';

import { AccessModel } from './access';
import { AccessView } from './components/AccessView';
import { DatasetsView } from './components/DatasetsView';
import { RunnersView } from './components/RunnersView';
import { SessionsView } from './components/SessionsView';
import { fedIcon } from './icons';
import { plural } from './format';
import { FedModel } from './model';

/** The sidebar's id; also the `data-id` of its tab (UI tests click `li[data-id=…]`). */
export const PANEL_ID = 'jupyter-fed-panel';

/** What the panel asks of the application (the plugin supplies these). */
export interface IPanelActions {
  confirm: (title: string, body: string, accept: string) => Promise<boolean>;
  insertCell: (text: string) => Promise<void>;
}

function section(id: string, label: string, element: JSX.Element): ReactWidget {
  const widget = ReactWidget.create(element);
  widget.id = `${PANEL_ID}-${id}`;
  widget.addClass('jp-Fed-sectionWidget');
  widget.title.label = label;
  return widget;
}

/** The side panel; showing it wakes the model (first load, then a refresh on every show). */
class FedPanel extends SidePanel {
  constructor(
    private readonly _model: FedModel,
    private readonly _access: AccessModel
  ) {
    super();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.wake();
    void this._access.refresh();
  }
}

/**
 * Show the number of requests waiting for the user's decision as a badge on the sidebar's tab
 * and on the Access section's title (`data-pending`, drawn by the style sheet).
 */
function showPending(access: AccessModel, panel: SidePanel, section: Widget): void {
  const update = (): void => {
    const count = access.pendingCount;
    for (const title of [panel.title, section.title]) {
      const { pending: _, ...rest } = title.dataset;
      const dataset = count > 0 ? { ...rest, pending: String(count) } : rest;
      if (title.dataset.pending !== dataset.pending) {
        title.dataset = dataset;
      }
    }
    const waiting = count > 0 ? ` (${plural(count, 'request')} waiting for you)` : '';
    panel.title.caption = `Federated learning${waiting}`;
  };
  access.changed.connect(update);
  update();
}

export function createFedPanel(
  model: FedModel,
  access: AccessModel,
  actions: IPanelActions
): SidePanel {
  const panel = new FedPanel(model, access);
  panel.id = PANEL_ID;
  panel.addClass('jp-Fed-panel');
  panel.title.icon = fedIcon;
  panel.title.caption = 'Federated learning';

  const title = new Widget();
  title.node.textContent = 'Federated learning';
  title.addClass('jp-Fed-heading');
  panel.toolbar.addItem('title', title);
  panel.toolbar.addItem('spacer', Toolbar.createSpacerItem());
  panel.toolbar.addItem(
    'refresh',
    new ToolbarButton({
      icon: refreshIcon,
      tooltip: 'Refresh runners, datasets, sessions, grants and requests',
      onClick: () => void model.refreshAll().then(() => access.refresh(true))
    })
  );
  panel.addWidget(
    section('runners', 'Runners', <RunnersView model={model} confirm={actions.confirm} />)
  );
  panel.addWidget(
    section('datasets', 'Datasets', <DatasetsView model={model} insertCell={actions.insertCell} />)
  );
  panel.addWidget(
    section('sessions', 'Sessions', <SessionsView model={model} confirm={actions.confirm} />)
  );
  const accessSection = section(
    'access',
    'Access',
    <AccessView access={access} confirm={actions.confirm} />
  );
  panel.addWidget(accessSection);
  showPending(access, panel, accessSection);
  // Runners are few and short; the catalog, the sessions and the access queue share the rest.
  (panel.content as AccordionPanel).setRelativeSizes([0.18, 0.3, 0.24, 0.28]);
  return panel;
}
