/**
 * The Access section against real runners: a custodian decides the requests waiting at a runner
 * (one approved with a smaller epsilon, one denied), and a model builder files a request from
 * the sidebar and is notified when the custodian approves it at the runner.
 */
import { execFileSync } from 'child_process';

import { APIRequestContext, expect, test } from '@playwright/test';

import { artifact, LAB_TOKEN, ready } from './env';
import { openLab, openPanel } from './lab';

const AUTH = { Authorization: `token ${LAB_TOKEN}` };

/** One call to a runner's API through the Lab's server, with the token it stores. */
async function runnerCall(
  request: APIRequestContext,
  runner: string,
  call: { method: string; path: string; params?: Record<string, string> }
): Promise<unknown> {
  const resp = await request.post(`/jupyter-fed/api/v1/runners/${runner}/admin`, { headers: AUTH, data: call });
  expect(resp.ok(), await resp.text()).toBe(true);
  return resp.json();
}

test('a custodian approves a request with a smaller epsilon and denies another', async ({ page, request }) => {
  const { access } = await ready();
  const { runner, approve, deny } = access.requests;
  await openLab(page);
  const panel = await openPanel(page);

  // Two requests wait: the count is on the sidebar's tab and on the section's title.
  const tab = page.locator('.jp-SideBar li[data-id="jupyter-fed-panel"]');
  await expect(tab).toHaveAttribute('data-pending', '2');
  await expect(panel.locator('.jp-AccordionPanel-title[aria-label="Access Section"]')).toHaveAttribute(
    'data-pending',
    '2'
  );
  const custodian = panel.locator(`.jp-Fed-accessRunner[data-runner="${runner}"]`);
  await expect(custodian).toHaveAttribute('data-role', 'custodian');
  const asked = custodian.locator(`.jp-Fed-request[data-request="${approve}"]`);
  await expect(asked).toContainText(`analyst→train_${runner}`);
  await expect(asked).toContainText('ffnet · ε 2');
  await expect(asked).toContainText('churn model for the quarterly review');
  const unknown = custodian.locator(`.jp-Fed-request[data-request="${deny}"]`);
  await expect(unknown).toContainText('unknown dataset');
  await expect(unknown.getByRole('button', { name: 'Approve…' })).toBeDisabled();
  await custodian.scrollIntoViewIfNeeded();
  await panel.screenshot({ path: artifact('panel-access-custodian.png') });
  await page.screenshot({ path: artifact('lab-access-custodian.png') });

  // Approve with a smaller budget than asked, and a note.
  await asked.getByRole('button', { name: 'Approve…' }).click();
  const form = asked.getByRole('form', { name: 'Approve the request' });
  await expect(form.locator('input[name="epsilon"]')).toHaveValue('2');
  await form.locator('input[name="epsilon"]').fill('0.5');
  await form.locator('input[name="note"]').fill('half of what you asked, to start');
  await form.getByRole('button', { name: 'Grant' }).click();
  await expect(asked).toHaveCount(0);
  const granted = custodian.locator('.jp-Fed-grant', { hasText: `analyst→train_${runner}` });
  await expect(granted).toContainText('ffnet · ε budget 0.5 · no expiry');
  await expect(tab).toHaveAttribute('data-pending', '1');

  // Deny the one for a dataset the runner does not hold.
  await unknown.getByRole('button', { name: 'Deny…' }).click();
  const denyForm = unknown.getByRole('form', { name: 'Deny the request' });
  await denyForm.locator('input[name="note"]').fill('no such dataset here');
  await denyForm.getByRole('button', { name: 'Deny request' }).click();
  await expect(unknown).toHaveCount(0);
  await expect(custodian.locator('.jp-Fed-custodian')).toContainText('No request is waiting.');
  await expect(tab).not.toHaveAttribute('data-pending');
  await panel.screenshot({ path: artifact('panel-access-decided.png') });

  // The runner recorded both decisions as made.
  const grants = (await runnerCall(request, runner, {
    method: 'GET',
    path: '/v1/grants',
    params: { user: 'analyst' }
  })) as { dataset: string; epsilon_budget: number; request_id: string; note: string }[];
  expect(grants).toEqual([
    expect.objectContaining({
      dataset: `train_${runner}`,
      epsilon_budget: 0.5,
      request_id: approve,
      note: 'half of what you asked, to start'
    })
  ]);
  const denied = (await runnerCall(request, runner, { method: 'GET', path: `/v1/requests/${deny}` })) as {
    status: string;
    note: string;
  };
  expect(denied).toMatchObject({ status: 'denied', note: 'no such dataset here' });
});

test('a builder requests a dataset and is notified when the custodian approves it', async ({ page, request }) => {
  const { access } = await ready();
  const builder = access.builder;
  // Connect the runner with the builder's token (as a builder's own Lab would hold it).
  const added = await request.post('/jupyter-fed/api/v1/runners', {
    headers: AUTH,
    data: { name: builder.runner, url: builder.url, token: builder.token, fingerprint: builder.fingerprint }
  });
  expect(added.ok(), await added.text()).toBe(true);
  try {
    await openLab(page);
    const panel = await openPanel(page);
    const mine = panel.locator(`.jp-Fed-accessRunner[data-runner="${builder.runner}"]`);
    await expect(mine).toHaveAttribute('data-role', 'builder');
    await expect(mine).toContainText(`builder · ${builder.user}`);
    await expect(mine).toContainText('No requests filed here.');

    await panel.getByRole('button', { name: 'Request access' }).click();
    const form = panel.getByRole('form', { name: 'Request access' });
    await form.locator('select[name="runner"]').selectOption(builder.runner);
    await form.locator('input[name="dataset"]').fill('registry');
    await form.locator('input[name="packages"]').fill('eda');
    await form.locator('input[name="epsilon"]').fill('1');
    await form.locator('textarea[name="reason"]').fill('age structure of the registry');
    await form.getByRole('button', { name: 'Send request' }).click();
    await expect(form).toBeHidden();
    const row = mine.locator('.jp-Fed-request', { hasText: 'registry' });
    await expect(row).toHaveAttribute('data-status', 'pending');
    await expect(row).toContainText('asked: eda · ε 1');
    const requestId = await row.getAttribute('data-request');
    expect(requestId).toMatch(/^req_/);

    // The custodian approves it at the runner, with the runner's own CLI, granting less.
    execFileSync(access.python, [
      '-m', 'jupyter_fed.cli', 'runner', 'requests', 'approve', requestId!,
      '--home', builder.home, '--epsilon', '0.5', '--note', 'start with this'
    ]);

    // The sidebar's poll (every 20 s) notices: a notification, and the row marked new.
    const toast = page.locator('.Toastify__toast', { hasText: `${builder.runner} approved your request for registry` });
    await expect(toast).toBeVisible({ timeout: 45_000 });
    await expect(toast).toContainText('(eda · ε budget 0.5 · no expiry): start with this');
    await expect(row).toHaveAttribute('data-status', 'approved');
    await expect(row).toHaveClass(/jp-mod-fresh/);
    await expect(row).toContainText('granted by custodian');
    await expect(mine.locator('.jp-Fed-myGrants')).toContainText('registry');
    await page.screenshot({ path: artifact('lab-access-notified.png') });
    await row.getByRole('button', { name: 'new', exact: true }).click();
    await expect(row).not.toHaveClass(/jp-mod-fresh/);
  } finally {
    await request.delete(`/jupyter-fed/api/v1/runners/${builder.runner}`, { headers: AUTH });
  }
});
