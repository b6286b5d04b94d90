/**
 * @jest-environment jsdom
 */
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import React from 'react';

import { FedAPI } from '../src/api';
import { DatasetsView } from '../src/components/DatasetsView';
import { chartPath, MetricChart } from '../src/components/MetricChart';
import { RunnersView } from '../src/components/RunnersView';
import { SessionsView } from '../src/components/SessionsView';
import { FedAPIError } from '../src/handler';
import { FedModel } from '../src/model';
import { IRunner, ISession } from '../src/tokens';
import { DEMO, PACKAGES, session } from './fixtures';

const RUNNERS: IRunner[] = [
  { name: 'silo0', url: 'https://127.0.0.1:1', status: 'ok', latency_ms: 4, datasets: 2, version: '0.1.0', error: null },
  {
    name: 'silo1',
    url: 'https://127.0.0.1:2',
    status: 'unreachable',
    latency_ms: null,
    datasets: null,
    version: null,
    error: 'ConnectError'
  }
];

/** A FedModel over a stub API: every call recorded, answers given per test. */
function stubModel(overrides: Partial<Record<keyof FedAPI, jest.Mock>> = {}) {
  const api = {
    runners: jest.fn(async () => RUNNERS),
    catalog: jest.fn(async () => ({ datasets: DEMO, errors: [] })),
    packages: jest.fn(async () => PACKAGES),
    sessions: jest.fn(async (): Promise<ISession[]> => []),
    metrics: jest.fn(async () => ({
      session_id: 's1',
      federated_metrics: [{ loss: 0.7, roc_auc: 0.5 }, { loss: 0.65, roc_auc: 0.6 }, { loss: 0.6, roc_auc: 0.7 }],
      client_metrics: [],
      latest_global_model_federated_loss: 0.6
    })),
    datasetPolicy: jest.fn(async () => ({ allowed_packages: null, min_rows: null, min_count: 10, epsilon_budget: 10 })),
    joinInvitation: jest.fn(async () => ({})),
    addRunner: jest.fn(async () => ({})),
    removeRunner: jest.fn(async () => undefined),
    cancel: jest.fn(async () => session('s1', { status: 'cancelled' })),
    ...overrides
  };
  const model = new FedModel({ api: api as unknown as FedAPI, stream: false });
  return { api, model };
}

const yes = jest.fn(async () => true);

describe('RunnersView', () => {
  it('shows health, latency, datasets and problems in words', async () => {
    const { model } = stubModel();
    render(<RunnersView model={model} confirm={yes} />);
    expect(screen.getByText('Loading runners…')).toBeTruthy();
    await act(() => model.refreshRunners());
    expect(screen.getByText('healthy · 4 ms · 2 datasets')).toBeTruthy();
    expect(screen.getByRole('alert').textContent).toBe('silo1 cannot be reached: ConnectError');
    expect(document.querySelector('[data-runner="silo0"]')?.getAttribute('data-status')).toBe('ok');
  });

  it('joins by invitation, and shows a refusal next to the form', async () => {
    const refusal = new FedAPIError(403, {
      code: 'unauthorized',
      message: 'wrong password for this invitation',
      hint: 'check the password'
    });
    const join = jest.fn().mockRejectedValueOnce(refusal).mockResolvedValueOnce({});
    const { model } = stubModel({ joinInvitation: join });
    await act(() => model.refreshRunners());
    render(<RunnersView model={model} confirm={yes} />);

    fireEvent.click(screen.getByText('Add runner'));
    const form = screen.getByRole('form', { name: 'Add a runner' });
    const connect = screen.getByText('Connect') as HTMLButtonElement;
    expect(connect.disabled).toBe(true);
    fireEvent.change(form.querySelector('textarea[name="blob"]')!, { target: { value: ' blob ' } });
    fireEvent.change(form.querySelector('input[name="password"]')!, { target: { value: 'pw' } });
    await act(async () => {
      fireEvent.click(connect);
    });
    expect(within(form).getByRole('alert').textContent).toBe(
      'wrong password for this invitation — check the password'
    );
    await act(async () => {
      fireEvent.click(screen.getByText('Connect'));
    });
    expect(join).toHaveBeenLastCalledWith({ blob: ' blob ', password: 'pw', name: null });
    await waitFor(() => expect(screen.queryByRole('form')).toBeNull());
  });

  it('adds a runner by address and token', async () => {
    const { model, api } = stubModel();
    render(<RunnersView model={model} confirm={yes} />);
    fireEvent.click(screen.getByText('Add runner'));
    fireEvent.click(screen.getByRole('tab', { name: 'Address and token' }));
    const form = screen.getByRole('form');
    fireEvent.change(form.querySelector('input[name="name"]')!, { target: { value: 'lab' } });
    fireEvent.change(form.querySelector('input[name="url"]')!, { target: { value: 'http://127.0.0.1:9' } });
    fireEvent.change(form.querySelector('input[name="token"]')!, { target: { value: 'jfr_x' } });
    await act(async () => {
      fireEvent.click(screen.getByText('Connect'));
    });
    expect(api.addRunner).toHaveBeenCalledWith({
      name: 'lab',
      url: 'http://127.0.0.1:9',
      token: 'jfr_x',
      fingerprint: null
    });
  });

  it('removes a runner once confirmed', async () => {
    const { model, api } = stubModel();
    await act(() => model.refreshRunners());
    const no = jest.fn(async () => false);
    const { rerender } = render(<RunnersView model={model} confirm={no} />);
    await act(async () => {
      fireEvent.click(screen.getByLabelText('Remove runner silo0'));
    });
    expect(api.removeRunner).not.toHaveBeenCalled();
    rerender(<RunnersView model={model} confirm={yes} />);
    await act(async () => {
      fireEvent.click(screen.getByLabelText('Remove runner silo0'));
    });
    expect(api.removeRunner).toHaveBeenCalledWith('silo0');
  });

  it('says when there are no runners', async () => {
    const { model } = stubModel({ runners: jest.fn(async () => []) });
    await act(() => model.refreshRunners());
    render(<RunnersView model={model} confirm={yes} />);
    expect(screen.getByText(/No runners yet/)).toBeTruthy();
  });
});

describe('DatasetsView', () => {
  it('filters by text and tag, and inserts a cell for the picked datasets', async () => {
    const { model } = stubModel();
    await act(() => model.refreshDatasets());
    const insert = jest.fn(async () => undefined);
    render(<DatasetsView model={model} insertCell={insert} />);
    const rows = () => document.querySelectorAll('.jp-Fed-dataset');
    expect(rows()).toHaveLength(4);

    fireEvent.change(screen.getByLabelText('Filter datasets'), { target: { value: 'train' } });
    expect(rows()).toHaveLength(2);
    fireEvent.change(screen.getByLabelText('Filter datasets'), { target: { value: '' } });
    fireEvent.click(document.querySelector('.jp-Fed-tagFilter .jp-Fed-tag')!);
    expect(rows()).toHaveLength(4);

    expect(document.querySelector('.jp-Fed-plan')?.textContent).toBe(
      'All datasets: train on 2 datasets, test on test, target y'
    );
    fireEvent.click(screen.getByLabelText('Use silo0/train_silo0 in the %%federate cell'));
    expect(document.querySelector('.jp-Fed-plan')?.textContent).toBe('train on 1 dataset, target y');
    await act(async () => {
      fireEvent.click(screen.getByText('Insert %%federate cell'));
    });
    expect(insert).toHaveBeenCalledTimes(1);
    expect((insert.mock.calls[0] as unknown as string[])[0]).toMatch(
      /^%%federate ffnet --datasets train_silo0 --rounds 5\ntarget: y\n/
    );
  });

  it('inserts the cell for the package chosen in the selector', async () => {
    // Prepare
    const { model } = stubModel();
    await act(() => model.refreshDatasets());
    const insert = jest.fn(async (_text: string) => undefined);
    render(<DatasetsView model={model} insertCell={insert} />);
    const select = screen.getByLabelText('Package') as HTMLSelectElement;
    expect(select.value).toBe('ffnet');
    expect([...select.options].map(o => o.value)).toEqual(['ffnet']); // before the list loads
    await act(() => model.refreshPackages());
    expect([...select.options].map(o => o.value)).toEqual(['eda', 'ffnet', 'stats']);
    expect(select.value).toBe('ffnet');
    expect(select.title).toMatch(/^ffnet: feed-forward neural network/);

    // Execute: eda, with a training set and a test set picked.
    fireEvent.change(select, { target: { value: 'eda' } });
    fireEvent.click(screen.getByLabelText('Use silo0/train_silo0 in the %%federate cell'));
    fireEvent.click(screen.getByLabelText('Use silo1/test in the %%federate cell'));
    await act(async () => {
      fireEvent.click(screen.getByText('Insert %%federate cell'));
    });

    // Assert
    expect(select.title).toMatch(/^eda: differentially private histograms .* \(one-shot analytics\)$/);
    expect(document.querySelector('.jp-Fed-plan')?.textContent).toBe(
      'analyse 2 datasets with eda, one step each (no rounds)'
    );
    expect(insert.mock.calls[0][0]).toBe(
      '%%federate eda --datasets train_silo0,silo1/test -o eda\nepsilon: 1.0\ncolumns: []\n'
    );

    // Back to ffnet: the test set evaluates again.
    fireEvent.change(select, { target: { value: 'ffnet' } });
    await act(async () => {
      fireEvent.click(screen.getByText('Insert %%federate cell'));
    });
    expect(insert.mock.calls[1][0]).toMatch(
      /^%%federate ffnet --datasets train_silo0 --test-datasets test --rounds 5\ntarget: y\n/
    );
  });

  it('offers ffnet alone when the server has no package list', async () => {
    const notFound = new FedAPIError(404, { code: 'not_found', message: 'no such route', hint: '' });
    const { model } = stubModel({ packages: jest.fn().mockRejectedValue(notFound) });
    await act(() => model.refreshDatasets());
    await act(() => model.refreshPackages());
    const insert = jest.fn(async (_text: string) => undefined);
    render(<DatasetsView model={model} insertCell={insert} />);
    const select = screen.getByLabelText('Package') as HTMLSelectElement;
    expect([...select.options].map(o => o.value)).toEqual(['ffnet']);
    await act(async () => {
      fireEvent.click(screen.getByText('Insert %%federate cell'));
    });
    expect(insert.mock.calls[0][0]).toMatch(/^%%federate ffnet /);
  });

  it("shows a dataset's columns and policy when opened", async () => {
    const { model } = stubModel();
    await act(() => model.refreshDatasets());
    render(<DatasetsView model={model} insertCell={jest.fn()} />);
    await act(async () => {
      fireEvent.click(screen.getAllByText('train_silo0')[0]);
    });
    expect(document.querySelector('.jp-Fed-columns')?.textContent).toContain('x14');
    expect(document.querySelector('.jp-Fed-policy')?.textContent).toBe(
      'any package · ≥ 21 rows per contribution · counts < 10 hidden · ε budget 10'
    );
  });

  it('lists unreachable runners and insert failures in words', async () => {
    const { model } = stubModel({
      catalog: jest.fn(async () => ({ datasets: DEMO, errors: [{ runner: 'silo9', message: 'unreachable' }] }))
    });
    await act(() => model.refreshDatasets());
    const insert = jest.fn(async () => {
      throw new Error('the notebook is not loaded yet');
    });
    render(<DatasetsView model={model} insertCell={insert} />);
    expect(screen.getByText('silo9: unreachable')).toBeTruthy();
    await act(async () => {
      fireEvent.click(screen.getByText('Insert %%federate cell'));
    });
    expect(screen.getByText('could not insert the cell: the notebook is not loaded yet')).toBeTruthy();
  });
});

describe('SessionsView', () => {
  const running = session('s1', { name: 'readmission', current_round: 2 });

  it('shows status, progress and the latest metric, live', async () => {
    const { model } = stubModel({ sessions: jest.fn(async () => [running]) });
    await act(() => model.refreshSessions());
    render(<SessionsView model={model} confirm={yes} />);
    expect(screen.getByText('readmission')).toBeTruthy();
    const bar = screen.getByRole('progressbar');
    expect(bar.getAttribute('aria-valuenow')).toBe('40');
    await waitFor(() => expect(document.querySelector('.jp-Fed-metric')?.textContent).toBe('AUC 0.700'));

    act(() =>
      model.handleEvent({
        type: 'round', session_id: 's1', round: 3, num_rounds: 5, model_round: 2,
        federated_metrics: { loss: 0.5, roc_auc: 0.8 }, dropped: []
      })
    );
    expect(bar.getAttribute('aria-valuenow')).toBe('60');
    expect(document.querySelector('.jp-Fed-metric')?.textContent).toBe('AUC 0.800');
    act(() => model.handleEvent({ type: 'status', session_id: 's1', status: 'completed' }));
    expect(document.querySelector('[data-session="s1"]')?.getAttribute('data-status')).toBe('completed');
  });

  it('opens the details with the metric curve', async () => {
    const { model } = stubModel({ sessions: jest.fn(async () => [running]) });
    await act(() => model.refreshSessions());
    render(<SessionsView model={model} confirm={yes} />);
    await act(async () => {
      fireEvent.click(screen.getByText('readmission'));
    });
    expect(document.querySelectorAll('.jp-Fed-chartPoint')).toHaveLength(3);
    expect(screen.getByLabelText('Metric to plot')).toBeTruthy();
  });

  it('cancels once confirmed, and hides the button for ended sessions', async () => {
    const { model, api } = stubModel({
      sessions: jest.fn(async () => [running, session('s0', { status: 'completed', created_at: '2025-01-01' })])
    });
    await act(() => model.refreshSessions());
    render(<SessionsView model={model} confirm={yes} />);
    expect(screen.queryByLabelText('Cancel session session s0')).toBeNull();
    await act(async () => {
      fireEvent.click(screen.getByLabelText('Cancel session readmission'));
    });
    expect(api.cancel).toHaveBeenCalledWith('s1');
    expect(document.querySelector('[data-session="s1"]')?.getAttribute('data-status')).toBe('cancelled');
  });

  it('shows a failed session’s error', async () => {
    const failed = session('s2', { status: 'failed', error: 'round 2 failed: 1 client(s) answered, 2 required' });
    const { model } = stubModel({ sessions: jest.fn(async () => [failed]) });
    await act(() => model.refreshSessions());
    render(<SessionsView model={model} confirm={yes} />);
    await act(async () => {
      fireEvent.click(screen.getByText('session s2'));
    });
    expect(screen.getByText('failed: round 2 failed: 1 client(s) answered, 2 required')).toBeTruthy();
  });
});

describe('SessionDetails of a record linkage', () => {
  it('shows the linked records per client and set instead of a curve', async () => {
    const linked = session('p1', { name: 'shared patients', package: 'prl', status: 'completed' });
    const { model } = stubModel({
      sessions: jest.fn(async () => [linked]),
      metrics: jest.fn(async () => ({
        session_id: 'p1',
        federated_metrics: [],
        client_metrics: {
          'hospital-a': {
            train: { n_records: 2000, n_overlapped_records: 1800, frac_overlapped: 0.9 },
            test: { n_records: 400, n_overlapped_records: 360, frac_overlapped: 0.9 }
          },
          'hospital-b': { train: { n_records: 2400, n_overlapped_records: 1800, frac_overlapped: 0.75 } }
        }
      }))
    });
    await act(() => model.refreshSessions());
    render(<SessionsView model={model} confirm={yes} />);
    await act(async () => {
      fireEvent.click(screen.getByText('shared patients'));
    });
    const table = await screen.findByRole('table', { name: 'Linked records' });
    const rows = within(table).getAllByRole('row').map(r => r.textContent);
    expect(rows).toEqual([
      'clientsetrecordslinkedshare',
      'hospital-atrain2,0001,80090.0%',
      'hospital-atest40036090.0%',
      'hospital-btrain2,4001,80075.0%'
    ]);
    expect(screen.queryByText(/first round has not ended/)).toBeNull();
  });

  it('says an ended session without metrics reported none', async () => {
    const ended = session('e1', { name: 'explore', package: 'eda', status: 'completed' });
    const { model } = stubModel({
      sessions: jest.fn(async () => [ended]),
      metrics: jest.fn(async () => ({ session_id: 'e1', federated_metrics: [], client_metrics: [] }))
    });
    await act(() => model.refreshSessions());
    render(<SessionsView model={model} confirm={yes} />);
    await act(async () => {
      fireEvent.click(screen.getByText('explore'));
    });
    expect(await screen.findByText('This session reported no metrics.')).toBeTruthy();
  });
});

describe('SessionsView warnings', () => {
  it('marks a session whose model is not learning, live, and lists why in its details', async () => {
    const done = session('s3', { status: 'completed', name: 'cancer' });
    const { model } = stubModel({ sessions: jest.fn(async () => [done]) });
    await act(() => model.refreshSessions());
    render(<SessionsView model={model} confirm={yes} />);
    expect(document.querySelector('.jp-Fed-warningBadge')).toBeNull();

    act(() =>
      model.handleEvent({
        type: 'warning', session_id: 's3', kind: 'one_class',
        message: 'the model predicts one class for every test row'
      })
    );
    expect(document.querySelector('.jp-Fed-warningBadge')?.getAttribute('title')).toBe(
      'the model predicts one class for every test row'
    );
    await act(async () => {
      fireEvent.click(screen.getByText('cancer'));
    });
    expect(document.querySelector('.jp-Fed-warning')?.textContent).toContain('predicts one class');
  });
});

describe('MetricChart', () => {
  it('breaks the line where a value is undefined', () => {
    const chart = chartPath([0.5, null, 0.7, 0.8], 100, 60);
    expect(chart?.points).toHaveLength(3);
    expect(chart?.path.match(/M/g)).toHaveLength(2);
    expect(chart?.min).toBe(0.5);
  });

  it('draws a flat series and says when there is nothing to draw', () => {
    expect(chartPath([1, 1], 100, 60)?.points).toHaveLength(2);
    render(<MetricChart values={[null]} label="AUC" />);
    expect(screen.getByText('No AUC values yet.')).toBeTruthy();
  });
});
