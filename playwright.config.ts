import { defineConfig } from '@playwright/test';

// Real Chromium (Debian's, never a downloaded one) with WebGPU on; on a machine without a GPU it
// runs on SwiftShader. See ../shared/ci-notes.md for the flags.
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const QUIET_FLAGS = [
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const PORT = Number(process.env.E2E_PORT || 4173);
// E2E_DIST: a build folder other than dist/ (vite build --outDir), so parallel checkouts' builds do not collide.
const DIST = process.env.E2E_DIST || 'dist';

export default defineConfig({
  testDir: 'e2e',
  timeout: 180_000,
  expect: { timeout: 60_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    launchOptions: {
      executablePath: CHROMIUM,
      args: ['--enable-unsafe-webgpu', ...QUIET_FLAGS],
    },
  },
  webServer: {
    command: `npx vite preview --host 127.0.0.1 --port ${PORT} --strictPort --outDir ${DIST}`,
    url: `http://127.0.0.1:${PORT}`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
  },
});
