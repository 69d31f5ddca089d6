// A ControlPlane that lets a test hold chosen coordinator messages until something has happened: a suite orders the
// run against an outside event (a joiner holding its stage before a step begins) by that event, not by a sleep.
import type { ControlPlane } from '../../src/coordinator/coordinator';

export type OutgoingControl = Parameters<ControlPlane['sendControl']>[0];

/**
 * Decides, per outgoing message, what to wait for before sending it: a promise holds the message until it settles;
 * undefined sends it at once. Held messages leave in the order they were sent; the others pass them, since what a
 * held message waits for may itself need a message (a joiner's swarm-assign) to get through.
 */
export type HoldControl = (msg: OutgoingControl) => Promise<unknown> | undefined;

export function holdingControlPlane(cp: ControlPlane, hold: HoldControl): ControlPlane {
  let held: Promise<void> = Promise.resolve();
  const on: ControlPlane['on'] = (event: 'control' & 'peer-left', handler: never) => cp.on(event, handler);
  return {
    get peerId() {
      return cp.peerId;
    },
    on,
    keyOf: (peerId) => cp.keyOf(peerId),
    sendControl(msg, to) {
      const wait = hold(msg);
      if (!wait) return cp.sendControl(msg, to);
      held = held
        .then(() => wait.catch(() => undefined))
        .then(() => cp.sendControl(msg, to))
        .catch(() => undefined); // the plane closed while the message was held: nobody is left to send it to
    },
  };
}
