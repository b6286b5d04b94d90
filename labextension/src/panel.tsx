/**
 * The sidebar widget: a `SidePanel` whose accordion holds the Runners, Datasets and Sessions
 * sections, each a React view over the shared `FedModel`.
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

import { DatasetsView } from './components/DatasetsView';
import { RunnersView } from './components/RunnersView';
import { SessionsView } from './components/SessionsView';
import { fedIcon } from './icons';
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
  constructor(private readonly _model: FedModel) {
    super();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.wake();
  }
}

export function createFedPanel(model: FedModel, actions: IPanelActions): SidePanel {
  const panel = new FedPanel(model);
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
      tooltip: 'Refresh runners, datasets and sessions',
      onClick: () => void model.refreshAll()
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
  // Runners are few and short; give the catalog and the sessions most of the height.
  (panel.content as AccordionPanel).setRelativeSizes([0.24, 0.38, 0.38]);
  return panel;
}
