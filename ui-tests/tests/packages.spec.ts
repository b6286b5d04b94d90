/**
 * The package selector beside "Insert %%federate cell": the coordinator's packages are offered,
 * and a one-shot package (eda) gets its own cell — every picked dataset, no rounds — which runs
 * in a real kernel and shows its results.
 */
import { expect, test } from '@playwright/test';

import { artifact, ready } from './env';
import { menu, openLab, openPanel } from './lab';

test.beforeAll(async () => {
  await ready();
});

test('inserts an eda cell picked in the package selector, runs it and shows the results', async ({
  page
}) => {
  await openLab(page);
  const panel = await openPanel(page);

  // The selector lists what GET /packages returns, ffnet first chosen.
  const select = panel.getByLabel('Package', { exact: true });
  await expect(select).toHaveValue('ffnet');
  await expect(select.locator('option')).toContainText(['eda', 'ffnet', 'stats']);

  // A training silo and a test set: a one-shot package analyses both.
  for (const key of ['silo0/train_silo0', 'silo1/test']) {
    await panel.locator(`.jp-Fed-dataset[data-dataset="${key}"] input[type="checkbox"]`).check();
  }
  await expect(panel.locator('.jp-Fed-plan')).toHaveText('train on 1 dataset, test on test, target y');
  await select.selectOption('eda');
  await expect(select).toHaveAttribute('title', /^eda: differentially private .*\(one-shot analytics\)/);
  await expect(panel.locator('.jp-Fed-plan')).toHaveText(
    'analyse 2 datasets with eda, one step each (no rounds)'
  );
  await panel.screenshot({ path: artifact('panel-package-eda.png') });
  await panel.getByRole('button', { name: 'Insert %%federate cell' }).click();

  // No notebook was open: a new one holds the loader and the eda cell.
  const notebook = page.locator('.jp-NotebookPanel:visible');
  await expect(notebook).toBeVisible();
  const cells = notebook.locator('.jp-Cell .jp-InputArea-editor');
  await expect(cells.nth(0)).toContainText('%load_ext jupyter_fed');
  const federate = cells.nth(1);
  await expect(federate).toContainText('%%federate eda --datasets train_silo0,silo1/test -o eda');
  await expect(federate).toContainText('epsilon: 1.0');
  await expect(federate).toContainText('columns: []');
  await expect(federate).not.toContainText('--rounds');
  await expect(federate).not.toContainText('--test-datasets');
  await expect(notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).toBeAttached({
    timeout: 60_000
  });

  const sessions = panel.locator('.jp-Fed-session');
  const before = await sessions.count(); // a reused server may hold earlier runs' sessions
  await menu(page, 'Run', 'Run All Cells');
  await expect(notebook.locator('.jp-Cell .jp-InputArea-prompt').nth(1)).not.toHaveText('[ ]:', {
    timeout: 60_000
  });

  // The session completes, and the cell shows the describe table and the pooled histograms.
  await expect(sessions).toHaveCount(before + 1, { timeout: 60_000 });
  await expect(sessions.first()).toHaveAttribute('data-status', 'completed', { timeout: 120_000 });
  const outputs = notebook.locator('.jp-Cell').nth(1).locator('.jp-OutputArea-output');
  await expect(outputs.filter({ hasText: 'EDA results' })).toHaveCount(1, { timeout: 60_000 });
  await expect(outputs.locator('table')).not.toHaveCount(0);
  await expect(outputs.locator('img')).not.toHaveCount(0);
  await page.screenshot({ path: artifact('notebook-eda-results.png') });
});
