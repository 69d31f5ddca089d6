// The swarm protocol's version. A peer sends it in `hello`, its first message after joining (a schema frozen across
// versions); a coordinator of another version refuses the peer with `refused` (the message says both versions)
// instead of running a swarm that cannot agree.
// Bump it whenever a message, a tensor kind or its meta changes incompatibly.
// 3: activations and their gradients travel as codec payloads (dtype u8, meta `codec`), peer-report, run config
//    `compress` (docs/compression.md).
// 4: targets no longer travel (the last stage samples them from the run's tokens: kind 'targets' is gone); local-steps
//    sync messages and outer state in state transfer; wire bytes in step-done.
// 5: trust (docs/trust.md): signed control envelopes {type, seq, body, sig}, step traces, validations, credits,
//    robust-grad and vinput tensor kinds, the `validation` wire category, run config `trust`.
// 7: run config `data` (the dataset, its tokenizer and the hashes of its splits: docs/deployment.md).
// 8: step-begin `owners` are indices into members[0] (were peer ids: a thousand microbatches did not fit 16 KiB).
export const PROTOCOL_VERSION = 8;
