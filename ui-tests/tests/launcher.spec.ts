/**
 * The Launcher offers the shipped notebooks; opening one copies it into the Lab's folder.
 */
import * as fs from 'fs';
import * as path from 'path';

import { expect, test } from '@playwright/test';

import { artifact, ready } from './env';
import { openLab } from './lab';

test('opens the quickstart from the Launcher, copied into the working folder', async ({ page }) => {
  const { home } = await ready();
  await openLab(page);
  const launcher = page.locator('.jp-Launcher');
  await expect(launcher).toBeVisible();
  const section = launcher.locator('.jp-Launcher-section', { hasText: 'Federated learning' });
  await expect(section).toBeVisible();
  await expect(
    section.locator('.jp-LauncherCard', { hasText: 'Data-provider evaluation template' })
  ).toBeVisible();
  await page.screenshot({ path: artifact('launcher.png') });

  await section.locator('.jp-LauncherCard', { hasText: 'jupyter-fed quickstart' }).click();
  await expect(page.locator('.jp-DirListing-item[title^="Name: quickstart.ipynb"]')).toBeVisible();
  await expect(page.locator('.lm-DockPanel-tabBar .lm-TabBar-tabLabel', { hasText: 'quickstart.ipynb' })).toBeVisible();
  await expect(page.locator('.jp-NotebookPanel:visible .jp-Cell').first()).toContainText(
    'jupyter-fed quickstart'
  );
  expect(fs.existsSync(path.join(home, 'quickstart.ipynb'))).toBe(true);
});
