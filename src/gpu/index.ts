export * from './errors';
export * from './device';
export * from './runtime';
