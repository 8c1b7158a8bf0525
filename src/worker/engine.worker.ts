// The engine worker: owns the GPU device and exposes the engine to the page through comlink.
import { expose } from 'comlink';
import { Engine } from './engine';

expose(new Engine());
