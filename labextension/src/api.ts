/**
 * The REST routes the sidebar uses, one typed method each (contract:
 * `jupyter_fed/server/README.md`).
 */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from './handler';
import {
  IAccessRequest,
  IAdminCall,
  IApproval,
  ICatalog,
  IDatasetPolicy,
  IGrant,
  IInvitation,
  ILogEntry,
  INewAccessRequest,
  IPackage,
  IRunner,
  IRunnerAdded,
  IRunnerSpec,
  IServerStatus,
  ISession,
  ISessionMetrics,
  ITokenInfo
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
    return this.runnerCall(runner, { method: 'GET', path: `/v1/datasets/${seg(dataset)}/policy` });
  }

  /** One call to a runner's own API, made by the server with the token it stores for it. */
  runnerCall<T>(runner: string, call: IAdminCall): Promise<T> {
    return this.post(`runners/${seg(runner)}/admin`, call);
  }

  // access: grants and requests at a runner (the runner decides what the stored token may do) ----
  /** Who the stored token is and its scopes: decides the custodian or the builder view. */
  tokenSelf(runner: string): Promise<ITokenInfo> {
    return this.runnerCall(runner, { method: 'GET', path: '/v1/tokens/self' });
  }

  /** Custodian: requests waiting for a decision, oldest first. */
  pendingRequests(runner: string): Promise<IAccessRequest[]> {
    return this.runnerCall(runner, {
      method: 'GET',
      path: '/v1/requests',
      params: { status: 'pending' }
    });
  }

  /** Custodian: the active grants on the runner's datasets. */
  grants(runner: string): Promise<IGrant[]> {
    return this.runnerCall(runner, { method: 'GET', path: '/v1/grants' });
  }

  approveRequest(runner: string, requestId: string, approval: IApproval): Promise<IAccessRequest> {
    return this.runnerCall(runner, {
      method: 'POST',
      path: `/v1/requests/${seg(requestId)}/approve`,
      body: approval
    });
  }

  denyRequest(runner: string, requestId: string, note: string): Promise<IAccessRequest> {
    return this.runnerCall(runner, {
      method: 'POST',
      path: `/v1/requests/${seg(requestId)}/deny`,
      body: { note }
    });
  }

  revokeGrant(runner: string, grantId: string): Promise<void> {
    return this.runnerCall(runner, { method: 'DELETE', path: `/v1/grants/${seg(grantId)}` });
  }

  /** Builder: their own requests at the runner, oldest first. */
  myRequests(runner: string): Promise<IAccessRequest[]> {
    return this.runnerCall(runner, { method: 'GET', path: '/v1/requests/self' });
  }

  /** Builder: their own active grants at the runner. */
  myGrants(runner: string): Promise<IGrant[]> {
    return this.runnerCall(runner, { method: 'GET', path: '/v1/grants/self' });
  }

  fileRequest(runner: string, request: INewAccessRequest): Promise<IAccessRequest> {
    return this.runnerCall(runner, { method: 'POST', path: '/v1/requests', body: request });
  }

  withdrawRequest(runner: string, requestId: string): Promise<IAccessRequest> {
    return this.runnerCall(runner, {
      method: 'POST',
      path: `/v1/requests/${seg(requestId)}/withdraw`
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
