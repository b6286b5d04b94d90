import { FedAPI } from '../src/api';
import {
  AccessModel,
  findDecisions,
  IDecision,
  parseOptionalNumber,
  parsePackages,
  roleOf
} from '../src/access';
import { FedModel } from '../src/model';
import { IAccessRequest, IAdminCall, IGrant, IRunner } from '../src/tokens';
import { FakeServer, IRecorded, json } from './fakeserver';
import { accessRequest, grant } from './fixtures';

function runner(name: string, status: IRunner['status'] = 'ok'): IRunner {
  return { name, url: `https://h/${name}`, status, latency_ms: 3, datasets: 2, version: '0.1.0', error: null };
}

/** One runner's API behind `POST runners/{name}/admin`: the body says which route. */
class FakeRunner {
  scopes: string[];
  user: string;
  pending: IAccessRequest[] = [];
  grants: IGrant[] = [];
  mine: IAccessRequest[] = [];
  calls: IAdminCall[] = [];

  constructor(scopes: string[], user: string) {
    this.scopes = scopes;
    this.user = user;
  }

  handle(req: IRecorded): Response {
    const call = req.body as IAdminCall;
    this.calls.push(call);
    const route = `${call.method} ${call.path}`;
    if (route === 'GET /v1/tokens/self') {
      return json(200, { token_id: 'tok_1', user: this.user, scopes: this.scopes });
    }
    if (route === 'GET /v1/requests') {
      if (!this.scopes.includes('register_dataset') && !this.scopes.includes('admin')) {
        return json(403, { code: 'forbidden', message: "this token lacks the 'register_dataset' scope", hint: '' });
      }
      return json(200, this.pending);
    }
    if (route === 'GET /v1/grants') {
      return json(200, this.grants);
    }
    if (route === 'GET /v1/requests/self') {
      return json(200, this.mine);
    }
    if (route === 'GET /v1/grants/self') {
      return json(200, this.grants);
    }
    const approve = call.path.match(/^\/v1\/requests\/(\w+)\/approve$/);
    if (call.method === 'POST' && approve) {
      const req = this.pending.find(r => r.request_id === approve[1]);
      if (!req) {
        return json(409, { code: 'conflict', message: `request ${approve[1]} is already denied`, hint: '' });
      }
      const body = call.body as { epsilon?: number | null; packages?: string[] | null };
      this.pending = this.pending.filter(r => r !== req);
      this.grants.push(grant('grt_new', { user: req.user, dataset: req.dataset, epsilon_budget: body.epsilon ?? null }));
      return json(200, { ...req, status: 'approved', grant_id: 'grt_new' });
    }
    const deny = call.path.match(/^\/v1\/requests\/(\w+)\/deny$/);
    if (call.method === 'POST' && deny) {
      const req = this.pending.find(r => r.request_id === deny[1])!;
      this.pending = this.pending.filter(r => r !== req);
      return json(200, { ...req, status: 'denied' });
    }
    const revoke = call.path.match(/^\/v1\/grants\/(\w+)$/);
    if (call.method === 'DELETE' && revoke) {
      this.grants = this.grants.filter(g => g.grant_id !== revoke[1]);
      return json(204, null);
    }
    if (route === 'POST /v1/requests') {
      const body = call.body as { dataset: string };
      const filed = accessRequest('req_new', { user: this.user, dataset: body.dataset });
      this.mine.push(filed);
      return json(201, filed);
    }
    return json(404, { code: 'not_found', message: `no route ${route}`, hint: '' });
  }
}

function setup(runners: Record<string, FakeRunner>, health: IRunner[] = Object.keys(runners).map(n => runner(n))) {
  const server = new FakeServer().on('GET runners', () => json(200, health));
  for (const [name, fake] of Object.entries(runners)) {
    server.on(`POST runners/${name}/admin`, req => fake.handle(req));
  }
  const fed = new FedModel({ api: new FedAPI(server.settings()), stream: false });
  const access = new AccessModel(fed, { interval: 0 });
  const decided: IDecision[][] = [];
  access.decided.connect((_, d) => decided.push(d));
  return { server, fed, access, decided };
}

describe('access helpers', () => {
  it('tells a custodian token from a builder token by its scopes', () => {
    expect(roleOf(['register_dataset', 'read_catalog'])).toBe('custodian');
    expect(roleOf(['admin'])).toBe('custodian');
    expect(roleOf(['read_catalog', 'create_session'])).toBe('builder');
    expect(roleOf([])).toBe('builder');
  });

  it('finds requests decided since the last look, and none on the first look', () => {
    const before = [accessRequest('a'), accessRequest('b'), accessRequest('c', { status: 'denied' })];
    const after = [
      accessRequest('a', { status: 'approved' }),
      accessRequest('b', { status: 'withdrawn' }),
      accessRequest('c', { status: 'denied' }),
      accessRequest('d', { status: 'denied' })
    ];
    expect(findDecisions(before, after).map(r => r.request_id)).toEqual(['a']);
    expect(findDecisions(null, after)).toEqual([]);
  });

  it('reads packages and optional numbers from form fields', () => {
    expect(parsePackages(' ffnet, eda.summary  ffnet ')).toEqual(['ffnet', 'eda.summary']);
    expect(parsePackages('  ')).toBeNull();
    expect(parseOptionalNumber('', 'ε')).toEqual({ ok: true, value: null });
    expect(parseOptionalNumber(' 0.5 ', 'ε')).toEqual({ ok: true, value: 0.5 });
    expect(parseOptionalNumber('0', 'ε')).toEqual({ ok: true, value: 0 });
    expect(parseOptionalNumber('-1', 'ε')).toEqual({ ok: false, error: 'ε must be a number ≥ 0, not "-1"' });
    expect(parseOptionalNumber('0', 'expiry', { positive: true })).toEqual({
      ok: false,
      error: 'expiry must be a number above 0, not "0"'
    });
    expect(parseOptionalNumber('soon', 'expiry').ok).toBe(false);
  });
});

describe('AccessModel as a custodian', () => {
  it('lists pending requests and active grants, and counts what waits', async () => {
    const silo0 = new FakeRunner(['admin', 'register_dataset'], 'admin');
    silo0.pending = [accessRequest('req_a', { dataset_exists: true }), accessRequest('req_b', { dataset: 'payroll', dataset_exists: false })];
    silo0.grants = [grant('grt_1'), grant('grt_old', { active: false, revoked_at: '2026-11-23T19:00:00+00:00' })];
    const { access, fed } = setup({ silo0 });

    await access.refresh();
    const state = access.access('silo0')!;
    expect(state.role).toBe('custodian');
    expect(state.user).toBe('admin');
    expect(state.pending.map(r => r.request_id)).toEqual(['req_a', 'req_b']);
    expect(state.grants.map(g => g.grant_id)).toEqual(['grt_1']);
    expect(access.pendingCount).toBe(2);
    expect(access.runners.map(s => s.runner)).toEqual(['silo0']);
    // The pending list is asked for by status, through the admin route.
    expect(silo0.calls).toContainEqual({ method: 'GET', path: '/v1/requests', params: { status: 'pending' } });
    access.dispose();
    fed.dispose();
  });

  it('approves with changed terms, denies with a note, revokes, and refreshes after each', async () => {
    const silo0 = new FakeRunner(['register_dataset'], 'carol');
    silo0.pending = [accessRequest('req_a'), accessRequest('req_b')];
    const { access, fed } = setup({ silo0 });
    await access.refresh();

    await access.approve('silo0', 'req_a', { epsilon: 0.5, packages: ['ffnet'], note: 'half' });
    expect(silo0.calls).toContainEqual({
      method: 'POST',
      path: '/v1/requests/req_a/approve',
      body: { epsilon: 0.5, packages: ['ffnet'], note: 'half' }
    });
    expect(access.access('silo0')!.pending.map(r => r.request_id)).toEqual(['req_b']);
    expect(access.access('silo0')!.grants[0]).toMatchObject({ grant_id: 'grt_new', epsilon_budget: 0.5 });

    await access.deny('silo0', 'req_b', 'not for this purpose');
    expect(silo0.calls).toContainEqual({
      method: 'POST',
      path: '/v1/requests/req_b/deny',
      body: { note: 'not for this purpose' }
    });
    expect(access.pendingCount).toBe(0);

    await access.revoke('silo0', 'grt_new');
    expect(silo0.calls).toContainEqual({ method: 'DELETE', path: '/v1/grants/grt_new' });
    expect(access.access('silo0')!.grants).toEqual([]);
    // Who the token is was asked once, not on every refresh.
    expect(silo0.calls.filter(c => c.path === '/v1/tokens/self')).toHaveLength(1);
    access.dispose();
    fed.dispose();
  });

  it("lets the runner's refusal through to the form, in words", async () => {
    const silo0 = new FakeRunner(['register_dataset'], 'carol');
    const { access, fed } = setup({ silo0 });
    await access.refresh();
    await expect(access.approve('silo0', 'req_gone', {})).rejects.toThrow('request req_gone is already denied');
    access.dispose();
    fed.dispose();
  });
});

describe('AccessModel as a builder', () => {
  it("announces each decision once, with the grant's terms, and marks it until dismissed", async () => {
    const vault = new FakeRunner(['read_catalog'], 'bob');
    vault.mine = [
      accessRequest('req_old', { status: 'denied', created_at: '2026-11-20T10:00:00+00:00' }),
      accessRequest('req_1', { dataset: 'registry' })
    ];
    const { access, decided, fed } = setup({ vault });

    await access.refresh();
    const state = access.access('vault')!;
    expect(state.role).toBe('builder');
    expect(state.mine.map(r => r.request_id)).toEqual(['req_1', 'req_old']); // newest first
    expect(decided).toEqual([]); // an old decision is not news
    expect(access.pendingCount).toBe(0); // a builder decides nothing

    vault.mine = [
      vault.mine[0],
      accessRequest('req_1', { dataset: 'registry', status: 'approved', grant_id: 'grt_9', note: 'ok' })
    ];
    vault.grants = [grant('grt_9', { dataset: 'registry', epsilon_budget: 0.5 })];
    await access.refresh();
    await access.refresh();
    expect(decided).toHaveLength(1);
    expect(decided[0]).toHaveLength(1);
    expect(decided[0][0]).toMatchObject({ runner: 'vault', request: { request_id: 'req_1', status: 'approved' } });
    expect(decided[0][0].grant).toMatchObject({ grant_id: 'grt_9', epsilon_budget: 0.5 });
    expect(access.isFresh('req_1')).toBe(true);
    access.dismiss('req_1');
    expect(access.isFresh('req_1')).toBe(false);
    access.dispose();
    fed.dispose();
  });

  it('files a request and shows it at once', async () => {
    const vault = new FakeRunner(['read_catalog'], 'bob');
    const { access, fed } = setup({ vault });
    await access.refresh();
    await access.fileRequest('vault', { dataset: 'registry', epsilon: 1, reason: 'survival' });
    expect(vault.calls).toContainEqual({
      method: 'POST',
      path: '/v1/requests',
      body: { dataset: 'registry', epsilon: 1, reason: 'survival' }
    });
    expect(access.access('vault')!.mine.map(r => r.dataset)).toEqual(['registry']);
    access.dispose();
    fed.dispose();
  });
});

describe('AccessModel and the runner list', () => {
  it('skips unreachable runners, and forgets removed ones', async () => {
    const silo0 = new FakeRunner(['admin'], 'admin');
    const silo1 = new FakeRunner(['admin'], 'admin');
    const health = [runner('silo0'), runner('silo1', 'unreachable')];
    const { access, fed, server } = setup({ silo0, silo1 }, health);
    access.start();
    await access.refresh();
    expect(access.runners.map(s => s.runner)).toEqual(['silo0']);
    expect(silo1.calls).toEqual([]);

    server.on('GET runners', () => json(200, [runner('silo1')]));
    await fed.refreshRunners();
    await new Promise(resolve => setTimeout(resolve, 0));
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(access.access('silo0')).toBeUndefined();
    // A runner that became reachable is looked at without waiting for the next poll.
    expect(access.access('silo1')?.role).toBe('custodian');
    access.dispose();
    fed.dispose();
  });

  it('keeps an error per runner, in words', async () => {
    const server = new FakeServer()
      .on('GET runners', () => json(200, [runner('silo0')]))
      .on('POST runners/silo0/admin', () =>
        json(502, { code: 'runner_error', message: 'runner silo0 answered 500', hint: 'see its log' })
      );
    const fed = new FedModel({ api: new FedAPI(server.settings()), stream: false });
    const access = new AccessModel(fed, { interval: 0 });
    await access.refresh();
    expect(access.access('silo0')).toMatchObject({
      loaded: true,
      role: null,
      error: 'runner silo0 answered 500 — see its log'
    });
    access.dispose();
    fed.dispose();
  });
});
