import { FedAPI } from '../src/api';
import { FakeServer, json } from './fakeserver';
import { PACKAGES } from './fixtures';

const RUNNER = {
  name: 'silo0',
  url: 'https://127.0.0.1:9000',
  status: 'ok',
  latency_ms: 3.2,
  datasets: 2,
  version: '0.1.0',
  error: null
};

describe('FedAPI', () => {
  it('lists runners', async () => {
    const server = new FakeServer().on('GET runners', () => json(200, [RUNNER]));
    await expect(new FedAPI(server.settings()).runners()).resolves.toEqual([RUNNER]);
    expect(server.calls[0].method).toBe('GET');
  });

  it('adds a runner with only the fields the server accepts', async () => {
    const server = new FakeServer().on('POST runners', req =>
      json(201, { ...(req.body as object), version: '0.1.0', latency_ms: 1 })
    );
    const api = new FedAPI(server.settings());
    await api.addRunner({ name: 'a', url: 'http://127.0.0.1:1', token: 't', fingerprint: null });
    await api.addRunner({ name: 'b', url: 'https://h:1', token: 't', fingerprint: 'sha256:ab' });
    expect(server.calls.map(c => c.body)).toEqual([
      { name: 'a', url: 'http://127.0.0.1:1', token: 't' },
      { name: 'b', url: 'https://h:1', token: 't', fingerprint: 'sha256:ab' }
    ]);
  });

  it('redeems an invitation through POST /invitations, trimming the pasted blob', async () => {
    const server = new FakeServer().on('POST invitations', () =>
      json(201, { name: 'vault', url: 'https://h:1', version: '0.1.0', latency_ms: 2 })
    );
    await new FedAPI(server.settings()).joinInvitation({ blob: '  jfi1.abc\n', password: 'pw' });
    expect(server.calls[0].body).toEqual({ blob: 'jfi1.abc', password: 'pw' });
  });

  it('removes a runner by its URL-encoded name', async () => {
    const server = new FakeServer().on('DELETE runners/a%20b', () => json(204, ''));
    await new FedAPI(server.settings()).removeRunner('a b');
    expect(server.calls[0].path).toBe('runners/a%20b');
  });

  it("reads a dataset's policy through the runner admin route", async () => {
    const policy = { allowed_packages: null, min_rows: null, min_count: 10, epsilon_budget: 10 };
    const server = new FakeServer().on('POST runners/silo0/admin', () => json(200, policy));
    await expect(new FedAPI(server.settings()).datasetPolicy('silo0', 'train')).resolves.toEqual(
      policy
    );
    expect(server.calls[0].body).toEqual({ method: 'GET', path: '/v1/datasets/train/policy' });
  });

  it('lists the packages the coordinator runs', async () => {
    const server = new FakeServer().on('GET packages', () => json(200, PACKAGES));
    await expect(new FedAPI(server.settings()).packages()).resolves.toEqual(PACKAGES);
    expect(server.calls.map(c => `${c.method} ${c.path}`)).toEqual(['GET packages']);
  });

  it('reads metrics with undefined values as null', async () => {
    const server = new FakeServer().on('GET sessions/s1/metrics', () =>
      json(
        200,
        '{"session_id": "s1", "federated_metrics": [{"loss": 0.7, "roc_auc": NaN}], ' +
          '"client_metrics": [{}], "latest_global_model_federated_loss": 0.7}'
      )
    );
    const metrics = await new FedAPI(server.settings()).metrics('s1');
    expect(metrics.federated_metrics).toEqual([{ loss: 0.7, roc_auc: null }]);
  });

  it('cancels, reads one session, its logs and the catalog', async () => {
    const session = { id: 's1', status: 'cancelled' };
    const server = new FakeServer()
      .on('POST sessions/s1/cancel', () => json(200, session))
      .on('GET sessions/s1', () => json(200, session))
      .on('GET sessions/s1/logs', () => json(200, []))
      .on('GET datasets', () => json(200, { datasets: [], errors: [] }))
      .on('GET sessions', () => json(200, [session]))
      .on('GET status', () => json(200, { version: '0.1.0', api: 'v1', ready: true }));
    const api = new FedAPI(server.settings());
    await api.cancel('s1');
    await api.session('s1');
    await api.logs('s1', 7);
    await api.catalog();
    await api.sessions();
    await api.status();
    expect(server.calls.map(c => `${c.method} ${c.path}`)).toEqual([
      'POST sessions/s1/cancel',
      'GET sessions/s1',
      'GET sessions/s1/logs?after=7',
      'GET datasets',
      'GET sessions',
      'GET status'
    ]);
  });
});
