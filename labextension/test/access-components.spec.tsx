/**
 * @jest-environment jsdom
 */
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import React from 'react';

import { AccessModel } from '../src/access';
import { FedAPI } from '../src/api';
import { AccessView } from '../src/components/AccessView';
import { FedModel } from '../src/model';
import { IAccessRequest, IGrant, IRunner } from '../src/tokens';
import { accessRequest, grant } from './fixtures';

const RUNNERS: IRunner[] = [
  { name: 'silo0', url: 'https://127.0.0.1:1', status: 'ok', latency_ms: 4, datasets: 2, version: '0.1.0', error: null },
  { name: 'vault', url: 'https://127.0.0.1:2', status: 'ok', latency_ms: 4, datasets: 1, version: '0.1.0', error: null }
];

/** silo0 holds a custodian's token, vault a builder's. */
function stubAccess() {
  let pending: IAccessRequest[] = [
    accessRequest('req_a', { dataset_exists: true }),
    accessRequest('req_b', { dataset: 'payroll', dataset_exists: false, reason: '' })
  ];
  let grants: IGrant[] = [grant('grt_1', { user: 'dora', dataset: 'test' })];
  let mine: IAccessRequest[] = [accessRequest('req_v', { user: 'bob', dataset: 'registry', epsilon: 1 })];
  const api = {
    runners: jest.fn(async () => RUNNERS),
    tokenSelf: jest.fn(async (runner: string) =>
      runner === 'silo0'
        ? { token_id: 't0', user: 'admin', scopes: ['admin'] }
        : { token_id: 't1', user: 'bob', scopes: ['read_catalog'] }
    ),
    pendingRequests: jest.fn(async () => pending),
    grants: jest.fn(async () => grants),
    approveRequest: jest.fn(async (_runner: string, id: string) => {
      pending = pending.filter(r => r.request_id !== id);
      grants = [...grants, grant('grt_2', { epsilon_budget: 0.5 })];
      return accessRequest(id, { status: 'approved' });
    }),
    denyRequest: jest.fn(async (_runner: string, id: string) => {
      pending = pending.filter(r => r.request_id !== id);
      return accessRequest(id, { status: 'denied' });
    }),
    revokeGrant: jest.fn(async (_runner: string, id: string) => {
      grants = grants.filter(g => g.grant_id !== id);
    }),
    myRequests: jest.fn(async () => mine),
    myGrants: jest.fn(async (): Promise<IGrant[]> => []),
    fileRequest: jest.fn(async (_runner: string, body: { dataset: string }) => {
      const filed = accessRequest('req_w', { user: 'bob', dataset: body.dataset });
      mine = [...mine, filed];
      return filed;
    }),
    withdrawRequest: jest.fn(async () => accessRequest('req_v', { status: 'withdrawn' }))
  };
  const fed = new FedModel({ api: api as unknown as FedAPI, stream: false });
  const access = new AccessModel(fed, { interval: 0 });
  const setMine = (next: IAccessRequest[]) => (mine = next);
  return { api, fed, access, setMine };
}

const yes = jest.fn(async () => true);

describe('AccessView', () => {
  it("shows a custodian's queue and grants, and a builder's requests, per runner", async () => {
    const { access } = stubAccess();
    const { container } = render(<AccessView access={access} confirm={yes} />);
    await act(() => access.refresh());

    const silo0 = container.querySelector('[data-runner="silo0"]') as HTMLElement;
    expect(silo0.dataset.role).toBe('custodian');
    expect(within(silo0).getByTitle('2 requests waiting for a decision').textContent).toBe('2');
    const unknown = silo0.querySelector('[data-request="req_b"]') as HTMLElement;
    expect(unknown.textContent).toContain('unknown dataset');
    // No grant can be made on a dataset that does not exist.
    expect((within(unknown).getByText('Approve…') as HTMLButtonElement).disabled).toBe(true);
    const known = silo0.querySelector('[data-request="req_a"]') as HTMLElement;
    expect(known.textContent).toContain('analyst→train_silo0');
    expect(known.textContent).toContain('ffnet · ε 2');
    expect(known.textContent).toContain('churn model');
    expect(known.textContent).not.toContain('unknown dataset');
    expect(silo0.querySelector('[data-grant="grt_1"]')!.textContent).toContain('dora→test');

    const vault = container.querySelector('[data-runner="vault"]') as HTMLElement;
    expect(vault.dataset.role).toBe('builder');
    expect(vault.textContent).toContain('builder · bob');
    const mine = vault.querySelector('[data-request="req_v"]') as HTMLElement;
    expect(mine.querySelector('.jp-Fed-status-pending')!.textContent).toBe('pending');
    expect(mine.textContent).toContain('waiting for the custodian');
  });

  it('approves with a changed epsilon and a note, and denies with a note', async () => {
    const { access, api } = stubAccess();
    const { container } = render(<AccessView access={access} confirm={yes} />);
    await act(() => access.refresh());

    const row = container.querySelector('[data-request="req_a"]') as HTMLElement;
    fireEvent.click(within(row).getByText('Approve…'));
    const form = within(row).getByRole('form', { name: 'Approve the request' });
    const epsilon = form.querySelector('input[name="epsilon"]') as HTMLInputElement;
    expect(epsilon.value).toBe('2'); // starts as asked
    expect((form.querySelector('input[name="packages"]') as HTMLInputElement).value).toBe('ffnet');
    fireEvent.change(epsilon, { target: { value: 'lots' } });
    await act(async () => {
      fireEvent.click(within(form).getByText('Grant'));
    });
    expect(within(form).getByRole('alert').textContent).toBe('ε must be a number ≥ 0, not "lots"');
    expect(api.approveRequest).not.toHaveBeenCalled();

    fireEvent.change(epsilon, { target: { value: '0.5' } });
    fireEvent.change(form.querySelector('input[name="expires"]')!, { target: { value: '30' } });
    fireEvent.change(form.querySelector('input[name="note"]')!, { target: { value: 'half of it' } });
    await act(async () => {
      fireEvent.click(within(form).getByText('Grant'));
    });
    expect(api.approveRequest).toHaveBeenCalledWith('silo0', 'req_a', {
      epsilon: 0.5,
      packages: ['ffnet'],
      expires_days: 30,
      note: 'half of it'
    });
    await waitFor(() => expect(container.querySelector('[data-request="req_a"]')).toBeNull());
    expect(container.querySelector('[data-grant="grt_2"]')!.textContent).toContain('ε budget 0.5');

    const other = container.querySelector('[data-request="req_b"]') as HTMLElement;
    fireEvent.click(within(other).getByText('Deny…'));
    const deny = within(other).getByRole('form', { name: 'Deny the request' });
    fireEvent.change(deny.querySelector('input[name="note"]')!, { target: { value: 'no such data' } });
    await act(async () => {
      fireEvent.click(within(deny).getByText('Deny request'));
    });
    expect(api.denyRequest).toHaveBeenCalledWith('silo0', 'req_b', 'no such data');
    await waitFor(() => expect(screen.getByText('No request is waiting.')).toBeTruthy());
  });

  it('revokes a grant after confirmation', async () => {
    const { access, api } = stubAccess();
    const confirm = jest.fn(async () => true);
    render(<AccessView access={access} confirm={confirm} />);
    await act(() => access.refresh());
    await act(async () => {
      fireEvent.click(screen.getByLabelText("Revoke dora's grant on test"));
    });
    expect(confirm).toHaveBeenCalledWith('Revoke grant', 'dora will no longer be able to use test at silo0.', 'Revoke');
    expect(api.revokeGrant).toHaveBeenCalledWith('silo0', 'grt_1');
    await waitFor(() => expect(screen.getByText('No dataset is granted to anyone.')).toBeTruthy());
  });

  it('files a request to a runner where the token is a builder’s, and marks a decision as new', async () => {
    const { access, api, setMine } = stubAccess();
    const { container } = render(<AccessView access={access} confirm={yes} />);
    await act(() => access.refresh());

    fireEvent.click(screen.getByText('Request access'));
    const form = screen.getByRole('form', { name: 'Request access' });
    // Only vault: at silo0 the token is a custodian's.
    expect(Array.from(form.querySelectorAll('option')).map(o => o.textContent)).toEqual(['vault']);
    fireEvent.change(form.querySelector('input[name="dataset"]')!, { target: { value: 'registry' } });
    fireEvent.change(form.querySelector('input[name="packages"]')!, { target: { value: 'eda, ffnet' } });
    fireEvent.change(form.querySelector('input[name="epsilon"]')!, { target: { value: '1' } });
    fireEvent.change(form.querySelector('textarea[name="reason"]')!, { target: { value: 'survival study' } });
    await act(async () => {
      fireEvent.click(within(form).getByText('Send request'));
    });
    expect(api.fileRequest).toHaveBeenCalledWith('vault', {
      dataset: 'registry',
      packages: ['eda', 'ffnet'],
      epsilon: 1,
      reason: 'survival study'
    });
    await waitFor(() => expect(screen.queryByRole('form', { name: 'Request access' })).toBeNull());
    expect(container.querySelector('[data-request="req_w"]')).not.toBeNull();

    setMine([accessRequest('req_v', { user: 'bob', dataset: 'registry', status: 'denied', note: 'not yet' })]);
    await act(() => access.refresh());
    const decided = container.querySelector('[data-request="req_v"]') as HTMLElement;
    expect(decided.dataset.status).toBe('denied');
    expect(decided.className).toContain('jp-mod-fresh');
    expect(decided.textContent).toContain('not yet');
    await act(async () => {
      fireEvent.click(within(decided).getByText('new'));
    });
    expect(container.querySelector('[data-request="req_v"]')!.className).not.toContain('jp-mod-fresh');
  });

  it('asks for a runner first when none is connected', async () => {
    const { access, api } = stubAccess();
    api.runners.mockResolvedValue([]);
    render(<AccessView access={access} confirm={yes} />);
    await act(() => access.refresh());
    expect(screen.getByText('Connect a runner to see its grants and access requests.')).toBeTruthy();
    expect(screen.queryByText('Request access')).toBeNull();
  });
});
