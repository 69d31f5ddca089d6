// Coordinator -> peers progress: after every completed step, a `step-report` to the whole room, so every peer (not
// only the last stage, which sees its own microbatch losses) can show the run's loss. Peers work without it.
import type { Unsubscribe } from '../net/emitter';
import type { ControlMessage } from '../protocol/messages';
import type { Coordinator } from './coordinator';

export function broadcastStepReports(coordinator: Coordinator, cp: { sendControl(msg: ControlMessage, to?: string): void }): Unsubscribe {
  return coordinator.events.on('step', (r) => {
    try {
      cp.sendControl(
        { type: 'step-report', step: r.step, loss: Number.isFinite(r.loss) ? r.loss : null, ms: Math.round(r.ms), attempts: r.attempts },
        '*',
      );
    } catch {
      // signaling gone: the run is over for this coordinator anyway
    }
  });
}
