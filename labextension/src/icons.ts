/**
 * The jupyter-fed icon: three silos joined to a central model. `jp-icon3` fills follow the theme.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="12" cy="12" r="3.2"/>
    <circle cx="4" cy="5" r="2.4"/>
    <circle cx="20" cy="5" r="2.4"/>
    <circle cx="12" cy="21" r="2.4"/>
    <path d="M5.6 6.4l4.2 3.6-.9 1.1-4.2-3.6zM18.4 6.4l-4.2 3.6.9 1.1 4.2-3.6zM11.3 15h1.4v3.8h-1.4z"/>
  </g>
</svg>`;

export const fedIcon = new LabIcon({ name: 'jupyter-fed:federated', svgstr: svg });
