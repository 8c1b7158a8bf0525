// The engine worker: owns the GPU device and exposes the engine to the page through comlink.
import { expose } from 'comlink';
import { RunController } from '../mas/controller';
import { Engine } from './engine';

expose(new Engine({ createController: (gpu) => new RunController(gpu) }));
