import { createNodeGpu } from '../gpu/node';
import { matmulSelfTest } from '../gpu/selftest';
import { NoWebGPUError } from '../gpu/errors';

export async function commandEnv(args: string[]): Promise<number> {
  if (args.includes('--help')) {
    console.log('usage: npm run cli -- env [--json]\n\nPrints the WebGPU adapter Dawn finds, its limits and features, and a matmul self-test.');
    return 0;
  }
  try {
    const gpu = await createNodeGpu();
    const selfTest = await matmulSelfTest(gpu);
    if (args.includes('--json')) console.log(JSON.stringify({ report: gpu.report, selfTest }, null, 2));
    else {
      const r = gpu.report;
      console.log(`adapter: ${[r.vendor, r.architecture, r.device, r.description].filter(Boolean).join(' / ')}`);
      console.log(`features: ${r.features.join(', ')}`);
      for (const [k, v] of Object.entries(r.limits)) console.log(`  ${k.padEnd(36)} ${v}`);
      console.log(`self-test: ${selfTest.passed ? 'passed' : 'FAILED'} (${selfTest.name}, max error ${selfTest.maxError.toExponential(2)}, ${selfTest.milliseconds.toFixed(0)} ms)`);
    }
    gpu.dispose();
    return selfTest.passed ? 0 : 1;
  } catch (e) {
    console.error(e instanceof NoWebGPUError ? `error: ${e.message}` : e);
    return 1;
  }
}
