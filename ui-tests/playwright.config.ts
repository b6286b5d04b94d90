/**
 * Playwright configuration for the jupyter-fed sidebar's UI tests.
 *
 * The web server is `fed_lab.py`: three demo runners on loopback and a JupyterLab with the
 * jupyter_fed server extension. Browsers come from Debian (`apt-get install chromium`), since
 * Playwright cannot download its own here; no video (no ffmpeg either).
 */
import { defineConfig } from '@playwright/test';

import { CHROMIUM, LAB_PORT, LAB_TOKEN, WORKDIR } from './tests/env';

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  timeout: 240_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    baseURL: `http://127.0.0.1:${LAB_PORT}`,
    viewport: { width: 1400, height: 900 },
    video: 'off',
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--headless',
        '--disable-background-networking',
        '--disable-dev-shm-usage',
        '--disable-extensions',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: `python fed_lab.py --port ${LAB_PORT} --token ${LAB_TOKEN} --workdir ${WORKDIR}`,
    cwd: __dirname,
    url: `http://127.0.0.1:${LAB_PORT}/jupyter-fed/api/v1/status?token=${LAB_TOKEN}`,
    reuseExistingServer: !process.env.CI,
    timeout: 180_000,
    gracefulShutdown: { signal: 'SIGTERM', timeout: 30_000 },
    stdout: 'pipe',
    stderr: 'pipe'
  }
});
