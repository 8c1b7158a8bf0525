// A figure's PNG is its SVG rasterized by the browser (at twice its size, for print): the two files of
// a figure are the same drawing by construction. Browser only (Image, canvas).
import type { FileBlob } from '../worker/api';

/** The width and height a standalone figure declares on its root element. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? '';
  const width = Number(/\swidth="([\d.]+)"/.exec(root)?.[1]);
  const height = Number(/\sheight="([\d.]+)"/.exec(root)?.[1]);
  if (!(width > 0) || !(height > 0)) throw new Error('this figure has no explicit width and height, so it cannot be rasterized');
  return { width, height };
}

/** The figure as PNG bytes, `scale` device pixels per SVG unit. */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const { width, height } = svgSize(svg);
  const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = Math.round(width * scale);
    c.height = Math.round(height * scale);
    const g = c.getContext('2d');
    if (!g) throw new Error('the browser gave no 2D canvas to draw a figure on');
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, c.width, c.height);
    g.drawImage(img, 0, 0, c.width, c.height);
    const blob = await new Promise<Blob | null>((resolve) => c.toBlob(resolve, 'image/png'));
    if (!blob) throw new Error('the browser could not make a PNG of a figure');
    return new Uint8Array(await blob.arrayBuffer());
  } finally {
    URL.revokeObjectURL(url);
  }
}

const enc = new TextEncoder();

/** A figure as an SVG file. */
export function svgFile(name: string, svg: string): FileBlob {
  return { name, bytes: enc.encode(svg) };
}

/** A figure as a PNG file. */
export async function pngFile(name: string, svg: string): Promise<FileBlob> {
  return { name, bytes: await svgToPng(svg) };
}
