import { FedAPI } from '../src/api';
import { FedModel, FedModelPart, sortSessions } from '../src/model';
import { ISession } from '../src/tokens';
import { FFNET_PACKAGE } from '../src/federate';
import { DEMO, PACKAGES, session } from './fixtures';
import { FakeServer, json } from './fakeserver';

const RUNNERS = [
  { name: 'silo0', url: 'https://h:1', status: 'ok', latency_ms: 3, datasets: 2, version: '0.1.0', error: null }
];

function setup(sessions: ISession[] = []): { server: FakeServer; model: FedModel; parts: FedModelPart[] } {
  const server = new FakeServer()
    .on('GET runners', () => json(200, RUNNERS))
    .on('GET datasets', () => json(200, { datasets: DEMO, errors: [] }))
    .on('GET sessions', () => json(200, sessions))
    .on('GET sessions/s1/metrics', () =>
      json(200, {
        session_id: 's1',
        federated_metrics: [{ loss: 0.7 }, { loss: 0.6, roc_auc: 0.7 }],
        client_metrics: [],
        latest_global_model_federated_loss: 0.6
      })
    );
  const model = new FedModel({ api: new FedAPI(server.settings()), stream: false });
  const parts: FedModelPart[] = [];
  model.changed.connect((_, part) => parts.push(part));
  return { server, model, parts };
}

const tick = () => new Promise(resolve => setTimeout(resolve, 0));

describe('FedModel', () => {
  it('loads runners, the catalog and sessions', async () => {
    const { model } = setup([session('s1', { current_round: 1 })]);
    expect(model.loaded('runners')).toBe(false);
    await model.refreshAll();
    await tick();
    expect(model.runners.map(r => r.name)).toEqual(['silo0']);
    expect(model.datasets).toHaveLength(4);
    expect(model.sessions.map(s => s.id)).toEqual(['s1']);
    expect(model.loaded('runners') && model.loaded('datasets') && model.loaded('sessions')).toBe(true);
    // The list shows the latest metric of sessions the stream said nothing about.
    expect(model.live('s1').latest).toEqual({ loss: 0.6, roc_auc: 0.7 });
    model.dispose();
  });

  it('keeps errors per section, in words', async () => {
    const server = new FakeServer().on('GET runners', () =>
      json(503, { code: 'coordinator_unavailable', message: 'the coordinator failed to boot', hint: 'see the log' })
    );
    const model = new FedModel({ api: new FedAPI(server.settings()), stream: false });
    await model.refreshRunners();
    await model.refreshDatasets();
    expect(model.runnersError).toBe('the coordinator failed to boot — see the log');
    expect(model.datasetsError).toMatch(/^the jupyter_fed server extension is not enabled/);
    model.dispose();
  });

  it('applies round and status events, newest session first', async () => {
    const { model, server } = setup([
      session('s1', { created_at: '2026-11-23T17:00:00Z' }),
      session('s2', { created_at: '2026-11-23T18:00:00Z', status: 'pending', current_round: 0 })
    ]);
    server.on('GET sessions/s2', () => json(200, session('s2', { status: 'completed', current_round: 5 })));
    await model.refreshSessions();
    expect(model.sessions.map(s => s.id)).toEqual(['s2', 's1']);

    model.handleEvent({
      type: 'round', session_id: 's2', round: 1, num_rounds: 5, model_round: 0,
      federated_metrics: { loss: 0.69, roc_auc: 0.5 }, dropped: []
    });
    expect(model.sessions[0]).toMatchObject({ id: 's2', status: 'running', current_round: 1 });
    expect(model.live('s2').latest).toEqual({ loss: 0.69, roc_auc: 0.5 });

    // The final evaluation arrives as round num_rounds + 1: progress stays at 5 of 5.
    model.handleEvent({
      type: 'round', session_id: 's2', round: 6, num_rounds: 5, model_round: 5,
      federated_metrics: { loss: 0.6 }, dropped: []
    });
    expect(model.sessions[0].current_round).toBe(5);

    model.handleEvent({ type: 'status', session_id: 's2', status: 'completed' });
    expect(model.sessions[0].status).toBe('completed');
    await tick();
    expect(server.calls.some(c => c.path === 'sessions/s2')).toBe(true); // re-read when it ends

    model.handleEvent({ type: 'log', session_id: 's1', level: 'info', client: 'silo0/a', message: 'hello' });
    expect(model.live('s1').logs).toEqual(['silo0/a: hello']);
    model.dispose();
  });

  it('fetches a session it did not know when an event names it', async () => {
    const { model, server } = setup([]);
    server.on('GET sessions/s9', () => json(200, session('s9')));
    model.handleEvent({ type: 'status', session_id: 's9', status: 'running' });
    await tick();
    await tick();
    expect(model.sessions.map(s => s.id)).toEqual(['s9']);
    model.dispose();
  });

  it('refreshes sessions when the stream (re)connects', async () => {
    const { model, server } = setup([session('s1')]);
    model.handleEvent({ type: 'ready', session_id: null });
    await tick();
    expect(server.calls.filter(c => c.path === 'sessions')).toHaveLength(1);
    model.dispose();
  });

  it('joins by invitation, then reloads runners and catalog', async () => {
    const { model, server } = setup();
    server.on('POST invitations', () => json(201, { name: 'vault', url: 'https://v:1', version: '0.1.0', latency_ms: 1 }));
    await model.joinInvitation({ blob: 'b', password: 'p' });
    expect(server.calls.map(c => `${c.method} ${c.path}`)).toEqual([
      'POST invitations',
      'GET runners',
      'GET datasets'
    ]);
    model.dispose();
  });

  it('lets a refused invitation through to the form', async () => {
    const { model, server } = setup();
    server.on('POST invitations', () =>
      json(403, { code: 'unauthorized', message: 'wrong password for this invitation', hint: 'ask' })
    );
    await expect(model.joinInvitation({ blob: 'b', password: 'p' })).rejects.toThrow(
      'wrong password for this invitation'
    );
    model.dispose();
  });

  it('caches policies, but not failures', async () => {
    const { model, server } = setup();
    let answers = 0;
    server.on('POST runners/silo0/admin', () =>
      ++answers === 1
        ? json(503, { code: 'runner_unavailable', message: 'down', hint: '' })
        : json(200, { allowed_packages: null, min_rows: null, min_count: 10, epsilon_budget: 10 })
    );
    await expect(model.policy('silo0', 'test')).rejects.toThrow('down');
    await expect(model.policy('silo0', 'test')).resolves.toMatchObject({ min_count: 10 });
    await model.policy('silo0', 'test');
    expect(answers).toBe(2);
    model.dispose();
  });

  it('cancels a session and shows its new status', async () => {
    const { model, server } = setup([session('s1')]);
    server.on('POST sessions/s1/cancel', () => json(200, session('s1', { status: 'cancelled' })));
    await model.refreshSessions();
    await model.cancelSession('s1');
    expect(model.sessions[0].status).toBe('cancelled');
    model.dispose();
  });
});

describe('FedModel packages', () => {
  it('offers ffnet until the list loads, then the packages the server runs', async () => {
    // Prepare
    const { model, server, parts } = setup();
    server.on('GET packages', () => json(200, PACKAGES));
    expect(model.packages).toEqual([FFNET_PACKAGE]);
    expect(model.loaded('packages')).toBe(false);

    // Execute
    await model.refreshPackages();

    // Assert
    expect(model.packages.map(p => p.name)).toEqual(['eda', 'ffnet', 'stats']);
    expect(model.packagesError).toBeNull();
    expect(model.loaded('packages')).toBe(true);
    expect(parts).toEqual(['packages']);
    model.dispose();
  });

  it('falls back to ffnet when the server is older than GET /packages', async () => {
    // Our catch-all answers an unknown route with a JSON 404; Jupyter itself with HTML.
    const jsonNotFound = new FakeServer().on('GET packages', () =>
      json(404, { code: 'not_found', message: 'no such route', hint: '' })
    );
    for (const server of [jsonNotFound, new FakeServer()]) {
      const model = new FedModel({ api: new FedAPI(server.settings()), stream: false });
      await model.refreshPackages();
      expect(model.packages).toEqual([FFNET_PACKAGE]);
      expect(model.packagesError).toBeNull();
      model.dispose();
    }
  });

  it('keeps the list it had when a refresh fails, and says why', async () => {
    const { model, server } = setup();
    let fail = false;
    server.on('GET packages', () =>
      fail
        ? json(503, { code: 'coordinator_unavailable', message: 'the coordinator failed to boot', hint: '' })
        : json(200, PACKAGES)
    );
    await model.refreshPackages();
    fail = true;
    await model.refreshPackages();
    expect(model.packages).toHaveLength(3);
    expect(model.packagesError).toBe('the coordinator failed to boot');
    model.dispose();
  });

  it('reads the list once at start, and again on an explicit refresh', async () => {
    const { server } = setup();
    server.on('GET packages', () => json(200, PACKAGES));
    const model = new FedModel({
      api: new FedAPI(server.settings()),
      stream: false,
      runnersInterval: 0,
      sessionsInterval: 0
    });
    model.start();
    model.wake(); // showing the panel again refreshes runners and sessions, not packages
    await tick();
    await tick();
    expect(server.calls.filter(c => c.path === 'packages')).toHaveLength(1);
    await model.refreshAll();
    expect(server.calls.filter(c => c.path === 'packages')).toHaveLength(2);
    model.dispose();
  });
});

describe('sortSessions', () => {
  it('puts the newest first', () => {
    const a = session('a', { created_at: '2026-01-01T00:00:00Z' });
    const b = session('b', { created_at: '2026-01-02T00:00:00Z' });
    expect(sortSessions([a, b]).map(s => s.id)).toEqual(['b', 'a']);
  });
});
