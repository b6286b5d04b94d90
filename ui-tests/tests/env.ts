/**
 * Where the UI tests find JupyterLab and the runners `fed_lab.py` started.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const LAB_PORT = Number(process.env.FED_UI_PORT ?? 8899);
export const LAB_TOKEN = process.env.FED_UI_TOKEN ?? 'fed-ui-test-token';
export const WORKDIR =
  process.env.FED_UI_WORKDIR ?? path.join(os.tmpdir(), `jupyter-fed-ui-${LAB_PORT}`);
export const CHROMIUM = process.env.FED_UI_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots kept as test artefacts (CI uploads this folder). */
export const ARTIFACTS = path.join(__dirname, '..', 'artifacts');

export interface IReady {
  url: string;
  token: string;
  root: string;
  /** The Lab's root folder. */
  home: string;
  runners: string[];
  invitation: { runner: string; blob: string; password: string };
  access: IAccessFixtures;
}

/** What `fed_lab.py` prepared for the Access section. */
export interface IAccessFixtures {
  /** Requests of `analyst` waiting at a runner the Lab holds an admin token for. */
  requests: { runner: string; approve: string; deny: string };
  /** A model builder's token for a runner the Lab is not connected to. */
  builder: { runner: string; user: string; url: string; token: string; fingerprint: string | null; home: string };
  /** The Python that runs the runners (for `jupyter-fed runner …` commands). */
  python: string;
}

/** What `fed_lab.py` wrote once JupyterLab and the runners answered. */
export async function ready(timeoutMs = 120_000): Promise<IReady> {
  const file = path.join(WORKDIR, 'ready.json');
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) {
      throw new Error(`${file} did not appear: fed_lab.py is not running for this workdir`);
    }
    await new Promise(resolve => setTimeout(resolve, 250));
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as IReady;
}

export function artifact(name: string): string {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}
