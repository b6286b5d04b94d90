/**
 * jupyter-fed's JupyterLab extension: only the wiring of its plugins.
 */
import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { notebooksPlugin } from './plugins/notebooks';
import { sidebarPlugin } from './plugins/sidebar';

const plugins: JupyterFrontEndPlugin<void>[] = [sidebarPlugin, notebooksPlugin];

export default plugins;
