/**
 * The sidebar against real runners: health and catalog, then a %%federate cell inserted from the
 * catalog, run in a real kernel, and followed to `completed` in the Sessions section.
 */
import { expect, test } from '@playwright/test';

import { artifact, ready } from './env';
import { menu, openLab, openPanel } from './lab';

test.beforeAll(async () => {
  await ready();
});

test('shows both runners healthy, with their datasets', async ({ page }) => {
  await openLab(page);
  const panel = await openPanel(page);

  for (const name of ['silo0', 'silo1']) {
    const runner = panel.locator(`.jp-Fed-runner[data-runner="${name}"]`);
    await expect(runner).toHaveAttribute('data-status', 'ok');
    await expect(runner.locator('.jp-Fed-runnerSummary')).toContainText(/healthy · \d+ ms · 2 datasets/);
  }
  const datasets = panel.locator('.jp-Fed-dataset');
  await expect(datasets).toHaveCount(4);
  await expect(panel.locator('.jp-Fed-dataset[data-dataset="silo0/train_silo0"]')).toContainText(
    '600 rows × 16 columns'
  );

  // Text filter, then tag filter.
  await panel.getByLabel('Filter datasets').fill('train');
  await expect(datasets).toHaveCount(2);
  await panel.getByLabel('Filter datasets').fill('');
  await panel.locator('.jp-Fed-tagFilter .jp-Fed-tag', { hasText: 'demo' }).click();
  await expect(datasets).toHaveCount(4);
  await panel.locator('.jp-Fed-tagFilter .jp-Fed-tag', { hasText: 'demo' }).click();

  // Details: columns and the policy read from the runner.
  await panel.locator('.jp-Fed-dataset[data-dataset="silo0/train_silo0"] .jp-Fed-link').click();
  await expect(panel.locator('.jp-Fed-policy')).toContainText('ε budget 10');
  await expect(panel.locator('.jp-Fed-columns')).toContainText('y');
  await panel.screenshot({ path: artifact('panel-runners-datasets.png') });
});

test('inserts a %%federate cell, runs it, and shows the session completed', async ({ page }) => {
  await openLab(page);
  const panel = await openPanel(page);

  for (const key of ['silo0/train_silo0', 'silo1/train_silo1', 'silo0/test', 'silo1/test']) {
    await panel.locator(`.jp-Fed-dataset[data-dataset="${key}"] input[type="checkbox"]`).check();
  }
  await expect(panel.locator('.jp-Fed-plan')).toContainText(
    'train on 2 datasets, test on test, target y'
  );
  await panel.getByRole('button', { name: 'Insert %%federate cell' }).click();

  // No notebook was open: a new one holds the loader and the %%federate cell.
  const notebook = page.locator('.jp-NotebookPanel:visible');
  await expect(notebook).toBeVisible();
  const cells = notebook.locator('.jp-Cell .jp-InputArea-editor');
  await expect(cells.nth(0)).toContainText('%load_ext jupyter_fed');
  await expect(cells.nth(1)).toContainText(
    '%%federate ffnet --datasets train_silo0,train_silo1 --test-datasets test --rounds 5'
  );
  await expect(cells.nth(1)).toContainText('target: y');
  await expect(notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).toBeAttached({
    timeout: 60_000
  });
  await page.screenshot({ path: artifact('notebook-federate-cell.png') });

  const sessions = panel.locator('.jp-Fed-session');
  const before = await sessions.count(); // a reused server may hold earlier runs' sessions
  await menu(page, 'Run', 'Run All Cells');

  // The %%federate cell starts (a kernel replaced while it starts would drop the queued cell).
  await expect(notebook.locator('.jp-Cell .jp-InputArea-prompt').nth(1)).not.toHaveText('[ ]:', {
    timeout: 60_000
  });

  // The session shows up live (newest first), then completes.
  await expect(sessions).toHaveCount(before + 1, { timeout: 60_000 });
  const session = sessions.first();
  await expect(session).toHaveAttribute('data-status', 'completed', { timeout: 180_000 });
  await expect(session.locator('.jp-Fed-sessionSummary')).toContainText('round 5 of 5');
  await expect(session.locator('.jp-Fed-metric')).toContainText(/AUC \d\.\d{3}/);
  await expect(session.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100');
  await expect(notebook.locator('.jp-OutputArea-output').last()).toContainText('completed', {
    timeout: 60_000
  });

  await session.locator('.jp-Fed-link').click();
  const details = session.locator('.jp-Fed-sessionDetails');
  await expect(details.locator('svg.jp-Fed-chart path.jp-Fed-chartLine')).toBeAttached();
  await expect(details.locator('.jp-Fed-chartPoint')).toHaveCount(6); // initial model + 5 rounds
  await expect(details.locator('.jp-Fed-client')).toHaveCount(2);
  await page.screenshot({ path: artifact('lab-session-completed.png') });
  await panel.screenshot({ path: artifact('panel-session-details.png') });
});

test('follows the dark theme', async ({ page }) => {
  await openLab(page);
  const panel = await openPanel(page);
  await expect(panel.locator('.jp-Fed-runner')).toHaveCount(2);
  await menu(page, 'Settings', 'Theme');
  await page.locator('.lm-Menu-content .lm-Menu-itemLabel', { hasText: /^JupyterLab Dark$/ }).click();
  await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'false');
  await expect(panel.locator('.jp-Fed-session').first()).toBeVisible();
  await panel.screenshot({ path: artifact('panel-dark.png') });
  // Back to light, so later runs start as they expect.
  await menu(page, 'Settings', 'Theme');
  await page.locator('.lm-Menu-content .lm-Menu-itemLabel', { hasText: /^JupyterLab Light$/ }).click();
  await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'true');
});
