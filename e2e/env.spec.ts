import { chromium, expect, test } from '@playwright/test';
import { CHROMIUM, QUIET_FLAGS } from '../playwright.config';

test('the worker reports its WebGPU adapter and passes the matmul self-test', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Environment' })).toBeVisible();
  const adapter = page.getByTestId('adapter-name');
  await expect(adapter).not.toBeEmpty();
  await expect(page.getByTestId('selftest')).toContainText('✓ passed');
  await expect(page.getByTestId('limits')).toContainText('maxComputeInvocationsPerWorkgroup');
  const limitsText = await page.getByTestId('limits').innerText();
  expect(limitsText).toMatch(/maxStorageBuffersPerShaderStage\s+\d+/);
  await page.getByRole('button', { name: /Show \d+ features/ }).click();
  await expect(page.getByTestId('features')).toBeVisible();
  await page.screenshot({ path: 'e2e/screenshots/env.png', fullPage: true });
});

test('without WebGPU the page says so plainly and explains how to enable it', async () => {
  // Chromium on Linux without --enable-unsafe-webgpu has navigator.gpu but returns no adapter.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: QUIET_FLAGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(test.info().project.use.baseURL + '/');
    const alert = page.getByTestId('no-webgpu');
    await expect(alert).toContainText('WebGPU is not available');
    await expect(alert).toContainText('--enable-unsafe-webgpu');
    // a fresh profile without WebGPU: IndexedDB works (the panel is mounted again at the top: one check, not two racing)
    await expect(page.getByTestId('storage-status')).toContainText('✓ read back');
    await page.reload();
    await expect(page.getByTestId('storage-status')).toContainText('✓ read back');
    await page.screenshot({ path: 'e2e/screenshots/no-webgpu.png', fullPage: true });
  } finally {
    await browser.close();
  }
});
