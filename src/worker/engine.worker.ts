// The engine worker: owns the GPU device and exposes the engine to the page through comlink, with the
// multi-agent run controller and the experiment runner of src/mas.
import { expose } from 'comlink';
import { RunController } from '../mas/controller';
import { experimentRunner } from '../mas/experiment';
import { Engine } from './engine';

expose(new Engine({ createController: (gpu) => new RunController(gpu), runExperiment: experimentRunner }));
