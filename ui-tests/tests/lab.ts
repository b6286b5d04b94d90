/**
 * Steps shared by the specs: open JupyterLab, open the sidebar, use the menus.
 */
import { expect, Locator, Page } from '@playwright/test';

import { LAB_TOKEN } from './env';

export const PANEL = '#jupyter-fed-panel';

/** JupyterLab with a fresh workspace (no notebooks left open by an earlier test). */
export async function openLab(page: Page): Promise<void> {
  await page.goto(`/lab?reset&token=${LAB_TOKEN}`);
  await page.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: 60_000 });
  await expect(page.locator('.jp-LabShell')).toBeVisible();
}

/** Click the sidebar's tab and return the panel. */
export async function openPanel(page: Page): Promise<Locator> {
  const tab = page.locator('.jp-SideBar li[data-id="jupyter-fed-panel"]');
  await tab.click();
  const panel = page.locator(PANEL);
  await expect(panel).toBeVisible();
  return panel;
}

/** Run a command from the main menu, e.g. `menu(page, 'Run', 'Run All Cells')`. */
export async function menu(page: Page, top: string, item: string): Promise<void> {
  await page.locator('#jp-MainMenu .lm-MenuBar-itemLabel', { hasText: new RegExp(`^${top}$`) }).click();
  await page.locator('.lm-Menu-content .lm-Menu-itemLabel', { hasText: new RegExp(`^${item}$`) }).first().click();
}
