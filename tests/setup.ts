import { afterAll } from 'vitest';
import { disposeTestGpu } from './helpers';

afterAll(disposeTestGpu);
