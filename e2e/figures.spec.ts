// Figures for a paper (issue 21 item 6): a short run's export holds standalone SVG charts (explicit
// size and viewBox, no page markup, a title, axis labels, the run's configuration in a caption, the
// legend clear of the title) and PNGs of them and of every heatmap; rendered in a page, every text of
// each figure lies inside it and nothing overlaps the title, measured with the browser's own font
// metrics. A heatmap saved from the latent view is a figure without the selection outline, and the
// Compare view saves its accuracy and loss charts as SVG and PNG.
import { readFileSync, writeFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { unzipSync } from 'fflate';
import { ready, shotBoth, smallLink, trainToEnd } from './helpers';

const CLI_REPORT = 'bench/results/old-instrument/tiny-lookup-d1.json';

/** Width and height from a PNG's IHDR chunk. */
function pngSize(b: Uint8Array): { width: number; height: number } {
  expect([...b.subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)![0];
  const width = Number(/\swidth="(\d+)"/.exec(root)![1]);
  const height = Number(/\sheight="(\d+)"/.exec(root)![1]);
  expect(root).toContain(`viewBox="0 0 ${width} ${height}"`);
  return { width, height };
}

function checkSvgText(svg: string, title: string): void {
  expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  for (const bad of ['width="100%"', 'data-testid', 'style=', 'class="compare-chart"']) expect(svg).not.toContain(bad);
  expect(svg).toContain(`<title>${title}</title>`);
  expect(svg).toMatch(/<rect x="0" y="0" width="\d+" height="\d+" fill="#ffffff"\/>/);
}

/**
 * Opens the SVG on its own in a fresh page and measures it with the browser's fonts: every text lies
 * inside the figure, no text overlaps a title line, the legend's frame clears the title and holds its
 * entries. Returns the texts by class. Screenshots it at 1280x800.
 */
async function measure(page: Page, svg: string, shotName: string): Promise<Record<string, string[]>> {
  const p = await page.context().newPage();
  await p.setViewportSize({ width: 1280, height: 800 });
  await p.setContent(`<!doctype html><html><body style="margin:0;background:#dee2e6">${svg}</body></html>`);
  const r = await p.evaluate(() => {
    const root = document.querySelector('svg')!;
    const W = root.width.baseVal.value;
    const H = root.height.baseVal.value;
    const box = (e: Element) => {
      const b = (e as SVGGraphicsElement).getBoundingClientRect();
      return { x0: b.left, y0: b.top, x1: b.right, y1: b.bottom };
    };
    const hit = (a: ReturnType<typeof box>, b: ReturnType<typeof box>) => a.x0 < b.x1 - 0.5 && b.x0 < a.x1 - 0.5 && a.y0 < b.y1 - 0.5 && b.y0 < a.y1 - 0.5;
    const texts = [...root.querySelectorAll('text')];
    const outside = texts.filter((t) => {
      const b = box(t);
      return b.x0 < -0.5 || b.y0 < -0.5 || b.x1 > W + 0.5 || b.y1 > H + 0.5;
    }).map((t) => t.textContent);
    const titles = texts.filter((t) => t.getAttribute('class') === 'title');
    const overTitle = texts.filter((t) => !titles.includes(t) && titles.some((x) => hit(box(x), box(t)))).map((t) => t.textContent);
    const frame = root.querySelector('.legend-frame');
    const legendOverTitle = frame ? titles.some((x) => hit(box(x), box(frame))) : false;
    const legendTexts = frame ? [...root.querySelectorAll('.legend text')] : [];
    const legendSpill = legendTexts.filter((t) => {
      const b = box(t);
      const f = box(frame!);
      return b.x0 < f.x0 || b.x1 > f.x1 || b.y0 < f.y0 || b.y1 > f.y1;
    }).map((t) => t.textContent);
    // captions do not overlap each other or anything above them
    const caps = texts.filter((t) => t.getAttribute('class') === 'caption');
    const capsOver = caps.filter((c) => texts.some((t) => t !== c && hit(box(c), box(t)))).map((t) => t.textContent);
    const byClass: Record<string, string[]> = {};
    for (const t of texts) {
      const k = t.getAttribute('class') ?? 'text';
      (byClass[k] ??= []).push(t.textContent ?? '');
    }
    return { outside, overTitle, legendOverTitle, legendSpill, capsOver, byClass };
  });
  await p.screenshot({ path: `e2e/screenshots/${shotName}.png` });
  await p.close();
  expect(r.outside).toEqual([]);
  expect(r.overTitle).toEqual([]);
  expect(r.legendOverTitle).toBe(false);
  expect(r.legendSpill).toEqual([]);
  expect(r.capsOver).toEqual([]);
  return r.byClass;
}

/** Pixels of a PNG near a colour, decoded by the browser. */
async function pixelsNear(page: Page, png: Uint8Array, rgb: [number, number, number]): Promise<number> {
  return page.evaluate(async ({ b64, rgb }) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext('2d')!;
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1]) + Math.abs(d[i + 2] - rgb[2]) < 40) n++;
    return n;
  }, { b64: Buffer.from(png).toString('base64'), rgb });
}

const CONFIG = ['Method diffmas', 'task lookup (difficulty 1)', 'base tiny', 'seed 7', '6 steps', 'lr 0.01', 'LoRA rank 2', 'batch 2'];

test("a run's exported figures are standalone, titled, labelled and captioned; its heatmap PNGs carry a title, layer/head, step and colour scale", async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto(smallLink({ steps: 6, evalEvery: 3, evalSize: 4, batch: 2, smoothing: 0 }));
  await ready(page);
  await trainToEnd(page);
  await expect(page.getByTestId('heatmap-now-canvas')).toBeVisible({ timeout: 60_000 });

  // a heatmap saved from the view: a figure (bigger than the map), without the selection outline of the head picked
  await page.getByTestId('inspect-layer').selectOption('0');
  await page.getByTestId('inspect-head').selectOption('1');
  const red: [number, number, number] = [255, 45, 85];
  const live = await page.getByTestId('head-summary-canvas').evaluate((c: HTMLCanvasElement) => c.toDataURL('image/png'));
  expect(await pixelsNear(page, new Uint8Array(Buffer.from(live.split(',')[1], 'base64')), red)).toBeGreaterThan(0);
  for (const id of ['heatmap-now-png', 'head-summary-png']) {
    await page.getByTestId(id).scrollIntoViewIfNeeded();
    const [d] = await Promise.all([page.waitForEvent('download'), page.getByTestId(id).click()]);
    expect(d.suggestedFilename()).toMatch(/-l0-h1\.png$/);
    const png = new Uint8Array(readFileSync(await d.path()));
    expect(pngSize(png).width).toBeGreaterThanOrEqual(2 * 420);
    expect(await pixelsNear(page, png, red)).toBe(0);
    writeFileSync(`e2e/screenshots/figure-saved-${id}.png`, png);
  }

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-run').click()]);
  const files = new Map(Object.entries(unzipSync(new Uint8Array(readFileSync(await download.path())))));
  const text = (n: string) => new TextDecoder().decode(files.get(n)!);
  const name = 'lookup d1 · diffmas · seed 7';
  for (const [chart, title, yLabel] of [['loss', `Training loss · ${name}`, 'loss (cross-entropy)'], ['accuracy', `Held-out accuracy · ${name}`, 'held-out accuracy']] as const) {
    const svg = text(`charts/${chart}.svg`);
    checkSvgText(svg, title);
    const size = svgSize(svg);
    // the PNG is the SVG at twice its size
    expect(pngSize(files.get(`charts/${chart}.png`)!)).toEqual({ width: 2 * size.width, height: 2 * size.height });
    const t = await measure(page, svg, `figure-run-${chart}`);
    expect(t.title.join(' ')).toBe(title);
    expect(t['x-label']).toEqual(['training step']);
    expect(t['y-label']).toEqual([yLabel]);
    const caption = t.caption.join(' ');
    for (const c of CONFIG) expect(caption).toContain(c);
  }
  await shotBoth(page, 'figures-training-panel', 'loss-chart');
  // each chart saves on its own from the Training panel, smoothed as shown (here not at all: smoothing=0 in the link)
  const saved = new Map<string, Uint8Array>();
  for (const id of ['loss-chart-svg', 'loss-chart-png', 'accuracy-chart-svg']) {
    const [d] = await Promise.all([page.waitForEvent('download'), page.getByTestId(id).click()]);
    saved.set(d.suggestedFilename(), new Uint8Array(readFileSync(await d.path())));
  }
  expect([...saved.keys()]).toEqual(['lookup-d1-diffmas-seed-7-loss.svg', 'lookup-d1-diffmas-seed-7-loss.png', 'lookup-d1-diffmas-seed-7-accuracy.svg']);
  const lossSvg = new TextDecoder().decode(saved.get('lookup-d1-diffmas-seed-7-loss.svg'));
  checkSvgText(lossSvg, `Training loss · ${name}`);
  expect(lossSvg).toContain('Training loss of each step, and the held-out loss');
  const ls = svgSize(lossSvg);
  expect(pngSize(saved.get('lookup-d1-diffmas-seed-7-loss.png')!)).toEqual({ width: 2 * ls.width, height: 2 * ls.height });
  expect(new TextDecoder().decode(saved.get('lookup-d1-diffmas-seed-7-accuracy.svg'))).toBe(text('charts/accuracy.svg'));

  const heatmaps = [...files.keys()].filter((k) => k.startsWith('heatmaps/') && k.endsWith('.png'));
  expect(heatmaps.length).toBeGreaterThanOrEqual(2);
  for (const h of heatmaps) {
    expect(h).toMatch(/^heatmaps\/(before|after)-step\d+-/);
    const s = pngSize(files.get(h)!);
    expect(s.width).toBeGreaterThanOrEqual(2 * 420);
    expect(s.height).toBeGreaterThan(2 * 200);
  }
  // look at one of each: a page showing the PNG at its SVG size
  for (const h of [heatmaps.find((k) => k.startsWith('heatmaps/after-') && !k.endsWith('-heads.png'))!, heatmaps.find((k) => k.endsWith('-heads.png'))!]) {
    const p = await page.context().newPage();
    await p.setViewportSize({ width: 1280, height: 800 });
    const s = pngSize(files.get(h)!);
    await p.setContent(`<body style="margin:0;background:#dee2e6"><img width="${s.width / 2}" height="${s.height / 2}" src="data:image/png;base64,${Buffer.from(files.get(h)!).toString('base64')}"></body>`);
    await p.screenshot({ path: `e2e/screenshots/figure-${h.endsWith('-heads.png') ? 'heads' : 'heatmap'}.png` });
    await p.close();
  }
});

test('Compare saves its accuracy and loss charts as standalone SVG and PNG figures, captioned with the comparison', async ({ page }) => {
  test.setTimeout(120_000);
  await page.goto(smallLink());
  await ready(page);
  await page.getByTestId('open-report-input').setInputFiles(CLI_REPORT);
  await expect(page.getByTestId('compare-results')).toBeVisible();
  await shotBoth(page, 'figures-compare-exports', 'compare-setting');
  const get = async (id: string) => {
    await page.getByTestId(id).scrollIntoViewIfNeeded();
    const [d] = await Promise.all([page.waitForEvent('download'), page.getByTestId(id).click()]);
    return { name: d.suggestedFilename(), bytes: new Uint8Array(readFileSync(await d.path())) };
  };
  for (const [svgId, pngId, file, title, yLabel] of [
    ['compare-svg', 'compare-png', 'compare-lookup-d1', 'Accuracy by method · lookup d1, 3 seeds', 'accuracy'],
    ['compare-loss-svg', 'compare-loss-png', 'compare-lookup-d1-loss', 'Training loss by method · lookup d1, 3 seeds', 'loss (cross-entropy)'],
  ] as const) {
    const s = await get(svgId);
    expect(s.name).toBe(`${file}.svg`);
    const svg = new TextDecoder().decode(s.bytes);
    checkSvgText(svg, title);
    const t = await measure(page, svg, `figure-${file}`);
    expect(t['y-label']).toEqual([yLabel]);
    const caption = t.caption.join(' ');
    for (const c of ['task lookup (difficulty 1)', 'base tiny', 'seeds', '200 steps', 'lr 0.003', 'LoRA rank 8', 'batch 32']) expect(caption).toContain(c);
    const p = await get(pngId);
    expect(p.name).toBe(`${file}.png`);
    const size = svgSize(svg);
    expect(pngSize(p.bytes)).toEqual({ width: 2 * size.width, height: 2 * size.height });
  }
});
