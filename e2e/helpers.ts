// Shared helpers of the end-to-end specs.
import { expect, type Page } from '@playwright/test';

/**
 * A link with CI-sized settings: the tiny shipped base model, few steps, a small batch. The page takes
 * them from the URL hash like any shared link (src/ui/state.ts).
 */
export function smallLink(extra: Record<string, string | number> = {}): string {
  const p: Record<string, string | number> = {
    model: 'builtin:tiny', steps: 6, batch: 4, evalEvery: 3, evalSize: 8, textBudget: 8, rank: 2, alpha: 4, targets: 'q_proj,k_proj,v_proj,o_proj', lr: 0.01, seed: 7, ...extra,
  };
  return '/#' + Object.entries(p).map(([k, v]) => `${k}=${encodeURIComponent(String(v)).replace(/%3B/g, ';').replace(/%3A/g, ':').replace(/%2C/g, ',')}`).join('&');
}

/** Waits until the worker found its GPU and the library listed the shipped models. */
export async function ready(page: Page): Promise<void> {
  await expect(page.getByTestId('selftest')).toContainText('✓ passed');
  await expect(page.getByTestId('model-row-builtin:tiny')).toBeVisible();
}

/** Number of distinct colours among the canvas's pixels (a blank canvas has 1). */
export function canvasColours(page: Page, testId: string): Promise<number> {
  return page.getByTestId(testId).evaluate((el) => {
    const c = (el instanceof HTMLCanvasElement ? el : el.querySelector('canvas')) as HTMLCanvasElement;
    const g = c.getContext('2d')!;
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<number>();
    for (let i = 0; i < d.length; i += 16) seen.add((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]);
    return seen.size;
  });
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `e2e/screenshots/${name}.png`, fullPage: false });
}

export async function shotFull(page: Page, name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `e2e/screenshots/${name}.png`, fullPage: true });
}

/** Screenshots of the current state at 1280x800 and at 1600x1000 (the sizes the page is checked at); the viewport is put back. */
export async function shotBoth(page: Page, name: string, scrollTo?: string): Promise<void> {
  const size = page.viewportSize() ?? { width: 1280, height: 800 };
  for (const [w, h] of [[1280, 800], [1600, 1000]] as const) {
    await page.setViewportSize({ width: w, height: h });
    await page.waitForTimeout(300);
    if (scrollTo) await page.getByTestId(scrollTo).first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: `e2e/screenshots/${name}-${w}x${h}.png`, fullPage: false });
  }
  await page.setViewportSize(size);
}

/** Trains the link's run to the end from the Train button. */
export async function trainToEnd(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(page.getByTestId('run-state')).toHaveText('done', { timeout: 240_000 });
}
