// The one error a codec throws for a payload it cannot accept (or an input it must not encode). The swarm drops the
// message and reports the sender; nothing else breaks. `codec` says whose rule it is, `problem` what was wrong.
import type { CodecKind } from './spec';

export class CodecError extends Error {
  constructor(
    readonly codec: CodecKind,
    /** Human-readable: what is impossible about the payload (or input), with the numbers. */
    readonly problem: string,
    /** The codec as configured, for the message (e.g. `int8 (block 64, nearest)`). */
    described: string = codec,
  ) {
    super(`${described} codec: ${problem}`);
    this.name = 'CodecError';
  }
}
