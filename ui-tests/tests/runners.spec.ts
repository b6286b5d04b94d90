/**
 * Connecting and removing runners from the sidebar, and errors shown in words.
 */
import { expect, test } from '@playwright/test';

import { artifact, ready } from './env';
import { openLab, openPanel } from './lab';

test('joins a runner by invitation, then removes it', async ({ page }) => {
  const { invitation } = await ready();
  await openLab(page);
  const panel = await openPanel(page);
  await expect(panel.locator('.jp-Fed-runner')).toHaveCount(2);

  await panel.getByRole('button', { name: 'Add runner' }).click();
  const form = panel.getByRole('form', { name: 'Add a runner' });
  await form.locator('textarea[name="blob"]').fill(invitation.blob);
  await form.locator('input[name="password"]').fill('not the password');
  await form.getByRole('button', { name: 'Connect' }).click();
  await expect(form.locator('.jp-Fed-error')).toContainText('wrong password for this invitation');
  await panel.screenshot({ path: artifact('panel-invitation-error.png') });

  await form.locator('input[name="password"]').fill(invitation.password);
  await form.getByRole('button', { name: 'Connect' }).click();
  await expect(form).toBeHidden();
  const vault = panel.locator('.jp-Fed-runner[data-runner="vault"]');
  await expect(vault).toHaveAttribute('data-status', 'ok');
  await expect(vault).toContainText('1 dataset');
  await expect(panel.locator('.jp-Fed-dataset[data-dataset="vault/registry"]')).toBeVisible();

  await vault.getByRole('button', { name: 'Remove runner vault' }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Remove' }).click();
  await expect(vault).toHaveCount(0);
  await expect(panel.locator('.jp-Fed-dataset[data-dataset="vault/registry"]')).toHaveCount(0);
});

test('says in words when a runner cannot be reached', async ({ page }) => {
  await ready();
  await openLab(page);
  const panel = await openPanel(page);

  await panel.getByRole('button', { name: 'Add runner' }).click();
  const form = panel.getByRole('form', { name: 'Add a runner' });
  await form.getByRole('tab', { name: 'Address and token' }).click();
  await form.locator('input[name="name"]').fill('ghost');
  await form.locator('input[name="url"]').fill('http://127.0.0.1:9');
  await form.locator('input[name="token"]').fill('jfr_nothing');
  await form.getByRole('button', { name: 'Connect' }).click();
  await expect(form.locator('.jp-Fed-error')).toContainText(
    "runner 'ghost' at http://127.0.0.1:9 is unreachable"
  );
  await expect(form.locator('.jp-Fed-error')).toContainText('start the runner, or check its URL');
  await panel.screenshot({ path: artifact('panel-unreachable-error.png') });
  await form.getByRole('button', { name: 'Cancel' }).click();
  await expect(panel.locator('.jp-Fed-runner')).toHaveCount(2);
});
