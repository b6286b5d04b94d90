/**
 * The REST routes the sidebar uses, one typed method each (contract:
 * `jupyter_fed/server/README.md`).
 */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from './handler';
import {
  ICatalog,
  IDatasetPolicy,
  IInvitation,
  ILogEntry,
  IPackage,
  IRunner,
  IRunnerAdded,
  IRunnerSpec,
  IServerStatus,
  ISession,
  ISessionMetrics
} from './tokens';

const seg = encodeURIComponent;

export class FedAPI {
  readonly settings: ServerConnection.ISettings;

  constructor(settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {
    this.settings = settings;
  }

  private get<T>(path: string): Promise<T> {
    return requestAPI<T>(path, { method: 'GET' }, this.settings);
  }

  private post<T>(path: string, body?: unknown): Promise<T> {
    return requestAPI<T>(
      path,
      { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body) },
      this.settings
    );
  }

  status(): Promise<IServerStatus> {
    return this.get('status');
  }

  // runners -------------------------------------------------------------------------------------
  runners(): Promise<IRunner[]> {
    return this.get('runners');
  }

  addRunner(spec: IRunnerSpec): Promise<IRunnerAdded> {
    const body: IRunnerSpec = { name: spec.name, url: spec.url, token: spec.token };
    if (spec.fingerprint) {
      body.fingerprint = spec.fingerprint;
    }
    return this.post('runners', body);
  }

  /** Redeem a custodian's invitation (usable once); the token it holds stays on the server. */
  joinInvitation(invitation: IInvitation): Promise<IRunnerAdded> {
    const body: IInvitation = { blob: invitation.blob.trim(), password: invitation.password };
    if (invitation.name) {
      body.name = invitation.name;
    }
    return this.post('invitations', body);
  }

  removeRunner(name: string): Promise<void> {
    return requestAPI<void>(`runners/${seg(name)}`, { method: 'DELETE' }, this.settings);
  }

  // datasets ------------------------------------------------------------------------------------
  catalog(): Promise<ICatalog> {
    return this.get('datasets');
  }

  /** A dataset's privacy policy, read at its runner with the stored token. */
  datasetPolicy(runner: string, dataset: string): Promise<IDatasetPolicy> {
    return this.post(`runners/${seg(runner)}/admin`, {
      method: 'GET',
      path: `/v1/datasets/${seg(dataset)}/policy`
    });
  }

  // packages ------------------------------------------------------------------------------------
  /** The packages the coordinator runs (a 404 from a server older than this route). */
  packages(): Promise<IPackage[]> {
    return this.get('packages');
  }

  // sessions ------------------------------------------------------------------------------------
  sessions(): Promise<ISession[]> {
    return this.get('sessions');
  }

  session(id: string): Promise<ISession> {
    return this.get(`sessions/${seg(id)}`);
  }

  cancel(id: string): Promise<ISession> {
    return this.post(`sessions/${seg(id)}/cancel`);
  }

  metrics(id: string): Promise<ISessionMetrics> {
    return this.get(`sessions/${seg(id)}/metrics`);
  }

  logs(id: string, after = 0): Promise<ILogEntry[]> {
    return this.get(`sessions/${seg(id)}/logs?after=${after}`);
  }
}
