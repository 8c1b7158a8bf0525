// The GPU runtime: tensors, a kernel launcher with a pipeline cache, command recording and readback.
//
// Usage pattern (llm.c style, no autograd):
//   const d = gpu.prepare(KERNEL, [a, b, c], { M, N, K }, [gx, gy, gz]);  // once per shape
//   gpu.record(d); gpu.record(...);                                       // many per command buffer
//   gpu.submit();  const out = await gpu.read(c);                         // one submit, one readback
// `gpu.run(...)` = prepare + record for one-off dispatches (its uniform buffer is freed after submit).
//
// Errors: every pipeline and dispatch is labelled with its kernel name; validation errors caught by
// error scopes, and device loss, surface as GpuError / DeviceLostError naming the kernels involved at
// the next submit/read/sync, never as a silent wrong result.
import { DeviceLostError, GpuError } from './errors';
import { requestDevice, type AdapterReport, type DeviceRequest } from './device';

export type DType = 'f32' | 'u32' | 'i32';
export type ParamType = 'u32' | 'i32' | 'f32';
/** Storage binding access: 'read' = var<storage, read>, 'write' = var<storage, read_write>. */
export type Access = 'read' | 'write';

/**
 * A compute kernel: one entry point of a WGSL module. Binding 0 of group 0 is the uniform params
 * struct (if `params` is non-empty, fields in this order, all 4-byte scalars); storage buffers
 * follow at bindings 1..n in the order of `bindings`.
 */
export interface KernelSpec {
  name: string;
  code: string;
  entryPoint: string;
  bindings: Access[];
  params?: ReadonlyArray<readonly [string, ParamType]>;
  /** WGSL `override` constants; part of the pipeline cache key (cf. tfjs's shaderKey). */
  constants?: Record<string, number | boolean>;
}

export type ParamValues = Record<string, number>;
type TypedArray = Float32Array | Uint32Array | Int32Array;

export class Tensor {
  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly label: string,
  ) {}
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get bytes(): number {
    return this.size * 4;
  }
}

interface CompiledKernel {
  spec: KernelSpec;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/** A dispatch prepared once (bind group and uniform buffer made once); record it any number of times. */
export class Dispatch {
  constructor(
    readonly kernel: CompiledKernel,
    readonly bindGroup: GPUBindGroup,
    readonly uniform: GPUBuffer | null,
    public workgroups: [number, number, number],
    private readonly gpu: Gpu,
  ) {}
  get name(): string {
    return this.kernel.spec.name;
  }
  /** Rewrites the uniform params (queue.writeBuffer: no allocation). */
  setParams(values: ParamValues): void {
    if (!this.uniform) throw new Error(`kernel ${this.name} has no params`);
    this.gpu.device.queue.writeBuffer(this.uniform, 0, packParams(this.kernel.spec, values));
  }
  destroy(): void {
    this.uniform?.destroy();
  }
}

function packParams(spec: KernelSpec, values: ParamValues): ArrayBuffer {
  const fields = spec.params ?? [];
  const bytes = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const view = new DataView(buf);
  fields.forEach(([name, type], i) => {
    const v = values[name];
    if (v === undefined || Number.isNaN(v)) throw new Error(`kernel ${spec.name}: param ${name} is missing`);
    if (type === 'f32') view.setFloat32(i * 4, v, true);
    else {
      if (!Number.isInteger(v)) throw new Error(`kernel ${spec.name}: param ${name} must be an integer, got ${v}`);
      if (type === 'u32') {
        if (v < 0 || v > 0xffffffff) throw new Error(`kernel ${spec.name}: param ${name}=${v} out of u32 range`);
        view.setUint32(i * 4, v, true);
      } else view.setInt32(i * 4, v, true);
    }
  });
  return buf;
}

function specKey(spec: KernelSpec): string {
  const c = spec.constants ? Object.entries(spec.constants).sort().map(([k, v]) => `${k}=${v}`).join(',') : '';
  return `${spec.name}|${spec.entryPoint}|${c}`;
}

export interface MemoryStats {
  /** Bytes of live tensors (uniform and staging buffers, a few bytes each, are not counted). */
  current: number;
  peak: number;
  tensors: number;
}

export class Gpu {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, CompiledKernel>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** Kernel names recorded into the open command buffer (for error messages). */
  private recorded: string[] = [];
  private transient: GPUBuffer[] = [];
  private readonly pending: Promise<void>[] = [];
  private readonly staging = new Map<number, GPUBuffer[]>();
  private lostInfo: { reason: string; message: string } | null = null;
  private lastKernels: string[] = [];
  private mem: MemoryStats = { current: 0, peak: 0, tensors: 0 };
  /** Count of pipelines compiled so far (benchmarks check that a training step adds none). */
  pipelinesCompiled = 0;
  /** Count of GPU buffers created so far (benchmarks check that a training step adds none). */
  buffersCreated = 0;

  constructor(
    readonly device: GPUDevice,
    readonly report: AdapterReport,
  ) {
    void device.lost.then((info) => {
      this.lostInfo = { reason: String(info.reason), message: info.message };
    });
  }

  static async create(gpu: GPU | undefined, request?: DeviceRequest): Promise<Gpu> {
    const { device, report } = await requestDevice(gpu, request);
    return new Gpu(device, report);
  }

  get lost(): boolean {
    return this.lostInfo !== null;
  }

  private checkAlive(): void {
    if (this.lostInfo) throw new DeviceLostError(this.lostInfo.reason, this.lostInfo.message, this.lastKernels);
  }

  memory(): MemoryStats {
    return { ...this.mem };
  }

  resetPeakMemory(): void {
    this.mem.peak = this.mem.current;
  }

  private createBuffer(size: number, usage: number, label: string): GPUBuffer {
    this.checkAlive();
    const bytes = Math.max(4, Math.ceil(size / 4) * 4);
    const max = this.device.limits.maxBufferSize;
    if (bytes > max) throw new GpuError(`buffer ${label} needs ${bytes} bytes, more than this device allows (${max})`);
    this.buffersCreated++;
    return this.device.createBuffer({ size: bytes, usage, label });
  }

  // ---- tensors -------------------------------------------------------------------------------

  tensor(shape: readonly number[], label: string, data?: ArrayLike<number>, dtype: DType = 'f32'): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`tensor ${label}: bad shape [${shape.join(', ')}]`);
    }
    const t0 = new Tensor(
      this.createBuffer(
        shape.reduce((a, b) => a * b, 1) * 4,
        GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        label,
      ),
      [...shape],
      dtype,
      label,
    );
    this.mem.current += t0.buffer.size;
    this.mem.tensors++;
    this.mem.peak = Math.max(this.mem.peak, this.mem.current);
    if (data) this.write(t0, data);
    return t0;
  }

  write(t: Tensor, data: ArrayLike<number>, offsetElements = 0): void {
    this.checkAlive();
    if (offsetElements + data.length > t.size) {
      throw new Error(`write to ${t.label}: ${data.length} values at offset ${offsetElements} do not fit size ${t.size}`);
    }
    const arr: TypedArray =
      data instanceof Float32Array || data instanceof Uint32Array || data instanceof Int32Array
        ? data
        : t.dtype === 'f32'
          ? Float32Array.from(data)
          : t.dtype === 'u32'
            ? Uint32Array.from(data)
            : Int32Array.from(data);
    if (arr.length === 0) return;
    this.device.queue.writeBuffer(t.buffer, offsetElements * 4, arr.buffer, arr.byteOffset, arr.byteLength);
  }

  destroy(t: Tensor): void {
    this.mem.current -= t.buffer.size;
    this.mem.tensors--;
    t.buffer.destroy();
  }

  // ---- kernels -------------------------------------------------------------------------------

  private module(code: string, name: string): GPUShaderModule {
    let m = this.modules.get(code);
    if (!m) {
      m = this.device.createShaderModule({ code, label: name });
      this.modules.set(code, m);
    }
    return m;
  }

  compile(spec: KernelSpec): CompiledKernel {
    const key = specKey(spec);
    const hit = this.pipelines.get(key);
    if (hit) {
      if (hit.spec.code !== spec.code) throw new Error(`two different kernels share the name ${spec.name}`);
      return hit;
    }
    this.checkAlive();
    this.device.pushErrorScope('validation');
    const entries: GPUBindGroupLayoutEntry[] = [];
    if (spec.params?.length) {
      entries.push({ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    }
    spec.bindings.forEach((access, i) =>
      entries.push({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: access === 'read' ? 'read-only-storage' : 'storage' },
      }),
    );
    const layout = this.device.createBindGroupLayout({ entries, label: spec.name });
    const pipeline = this.device.createComputePipeline({
      label: spec.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout], label: spec.name }),
      compute: {
        module: this.module(spec.code, spec.name),
        entryPoint: spec.entryPoint,
        constants: spec.constants
          ? Object.fromEntries(Object.entries(spec.constants).map(([k, v]) => [k, Number(v)]))
          : undefined,
      },
    });
    this.watch(this.device.popErrorScope(), [spec.name], 'compiling');
    const compiled = { spec, pipeline, layout };
    this.pipelines.set(key, compiled);
    this.pipelinesCompiled++;
    return compiled;
  }

  private watch(scope: Promise<GPUError | null>, kernels: string[], what: string): void {
    this.pending.push(
      scope.then((err) => {
        if (err) {
          throw new GpuError(`GPU error while ${what} kernel(s) ${kernels.join(', ')}: ${err.message}`, kernels);
        }
      }),
    );
  }

  /** Makes the bind group (and uniform buffer) of one dispatch, once per shape. */
  prepare(
    spec: KernelSpec,
    tensors: readonly Tensor[],
    params: ParamValues = {},
    workgroups: readonly number[] = [1, 1, 1],
  ): Dispatch {
    if (tensors.length !== spec.bindings.length) {
      throw new Error(`kernel ${spec.name} takes ${spec.bindings.length} buffers, got ${tensors.length}`);
    }
    const k = this.compile(spec);
    const entries: GPUBindGroupEntry[] = [];
    let uniform: GPUBuffer | null = null;
    if (spec.params?.length) {
      const packed = packParams(spec, params);
      uniform = this.createBuffer(packed.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${spec.name}.params`);
      this.device.queue.writeBuffer(uniform, 0, packed);
      entries.push({ binding: 0, resource: { buffer: uniform } });
    }
    tensors.forEach((t, i) => entries.push({ binding: i + 1, resource: { buffer: t.buffer } }));
    const bindGroup = this.device.createBindGroup({ layout: k.layout, entries, label: spec.name });
    const wg = checkWorkgroups(spec.name, workgroups, this.device.limits.maxComputeWorkgroupsPerDimension);
    return new Dispatch(k, bindGroup, uniform, wg, this);
  }

  /** Records prepared dispatches into the open command buffer (one compute pass). */
  record(...dispatches: Dispatch[]): void {
    this.checkAlive();
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.encoder = this.device.createCommandEncoder({ label: 'commands' });
    }
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    for (const d of dispatches) {
      const [x, y, z] = d.workgroups;
      if (x === 0 || y === 0 || z === 0) continue;
      this.pass.setPipeline(d.kernel.pipeline);
      this.pass.setBindGroup(0, d.bindGroup);
      this.pass.dispatchWorkgroups(x, y, z);
      this.recorded.push(d.name);
    }
  }

  /** prepare + record for a one-off dispatch; its uniform buffer is released after the next submit. */
  run(spec: KernelSpec, tensors: readonly Tensor[], params: ParamValues = {}, workgroups: readonly number[] = [1, 1, 1]): void {
    this.recordOnce(this.prepare(spec, tensors, params, workgroups));
  }

  /** Records a dispatch that will not be reused: its uniform buffer is released after the next submit. */
  recordOnce(d: Dispatch): void {
    this.record(d);
    if (d.uniform) this.transient.push(d.uniform);
  }

  private openEncoder(): GPUCommandEncoder {
    this.checkAlive();
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.encoder = this.device.createCommandEncoder({ label: 'commands' });
    }
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return this.encoder;
  }

  /** Records a buffer copy (elements, not bytes). */
  copy(src: Tensor, dst: Tensor, count = src.size, srcOffset = 0, dstOffset = 0): void {
    if (srcOffset + count > src.size || dstOffset + count > dst.size) {
      throw new Error(`copy ${src.label}[${srcOffset}..+${count}] -> ${dst.label}[${dstOffset}..]: out of bounds`);
    }
    if (count === 0) return;
    this.openEncoder().copyBufferToBuffer(src.buffer, srcOffset * 4, dst.buffer, dstOffset * 4, count * 4);
    this.recorded.push(`copy ${src.label}->${dst.label}`);
  }

  /** Records zero-filling of a tensor. */
  clear(t: Tensor): void {
    this.openEncoder().clearBuffer(t.buffer);
    this.recorded.push(`clear ${t.label}`);
  }

  /** Submits everything recorded so far as one command buffer. */
  submit(): void {
    if (!this.encoder) return;
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    const kernels = this.recorded;
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.recorded = [];
    this.lastKernels = [...new Set(kernels)].slice(-12);
    const oom = this.device.popErrorScope();
    const val = this.device.popErrorScope();
    const names = [...new Set(kernels)];
    this.watch(oom, names, 'running (out of memory)');
    this.watch(val, names, 'running');
    const transient = this.transient;
    this.transient = [];
    if (transient.length) {
      void this.device.queue.onSubmittedWorkDone().then(
        () => transient.forEach((b) => b.destroy()),
        () => undefined,
      );
    }
  }

  /** Waits for the GPU and raises any error seen since the last sync. */
  async sync(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    await this.raisePending();
    this.checkAlive();
  }

  private async raisePending(): Promise<void> {
    const pending = this.pending.splice(0);
    const results = await Promise.allSettled(pending);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
  }

  /** Reads f32 values back to the CPU (submits what is recorded first). */
  async read(t: Tensor, count = t.size, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(t, count, offset));
  }

  /** Reads u32 values (token ids, targets) back to the CPU. */
  async readU32(t: Tensor, count = t.size, offset = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.readBytes(t, count, offset));
  }

  private async readBytes(t: Tensor, count: number, offset: number): Promise<ArrayBuffer> {
    if (offset + count > t.size) throw new Error(`read ${t.label}[${offset}..+${count}]: out of bounds (size ${t.size})`);
    const bytes = Math.max(4, count * 4);
    const pool = this.staging.get(bytes) ?? [];
    this.staging.set(bytes, pool);
    const staging =
      pool.pop() ?? this.createBuffer(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `readback ${t.label}`);
    if (count > 0) this.openEncoder().copyBufferToBuffer(t.buffer, offset * 4, staging, 0, count * 4);
    this.recorded.push(`read ${t.label}`);
    this.submit();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.checkAlive();
      await this.raisePending();
      throw new GpuError(`reading ${t.label} back failed: ${(e as Error).message}`);
    }
    const raw = staging.getMappedRange(0, count * 4).slice(0);
    staging.unmap();
    pool.push(staging);
    await this.raisePending();
    return raw;
  }

  /** Frees the device (tests, CLI exit). */
  dispose(): void {
    for (const pool of this.staging.values()) pool.forEach((b) => b.destroy());
    this.staging.clear();
    this.device.destroy();
  }
}

function checkWorkgroups(name: string, wg: readonly number[], max: number): [number, number, number] {
  const out: [number, number, number] = [wg[0] ?? 1, wg[1] ?? 1, wg[2] ?? 1];
  for (const v of out) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`kernel ${name}: bad workgroup count [${out.join(', ')}]`);
    if (v > max) throw new Error(`kernel ${name}: ${v} workgroups in one dimension exceed the device limit ${max}`);
  }
  return out;
}

/** Ceil division, for workgroup counts. */
export const cdiv = (a: number, b: number): number => Math.ceil(a / b);
