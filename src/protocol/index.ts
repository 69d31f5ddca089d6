// The swarm's protocol: control messages, the run config, tensor kinds, the protocol version.
export * from './messages';
export * from './run-config';
export * from './version';
export * from './control-codec';
export * from './signed-control';
export * from './tensors';
