// Coordinator -> peers progress: after every completed step, a `step-report` to the whole room, so every peer (not
// only the last stage, which sees its own microbatch losses) can show the run's loss. Peers work without it.
import type { Unsubscribe } from '../net/emitter';
import type { ControlMessage } from '../protocol/messages';
import type { Coordinator } from './coordinator';
import type { RunView } from './run-view';

/** `view`: the run's view after the step (subscribed before this), whose wire figures go with the report. */
export function broadcastStepReports(
  coordinator: Coordinator,
  cp: { sendControl(msg: ControlMessage, to?: string): void },
  view?: () => RunView,
): Unsubscribe {
  return coordinator.events.on('step', (r) => {
    const v = view?.();
    const wire = v ? { wire: v.wire, fp32: v.fp32, tokens: v.tokens } : {};
    try {
      cp.sendControl(
        { type: 'step-report', step: r.step, loss: Number.isFinite(r.loss) ? r.loss : null, ms: Math.round(r.ms), attempts: r.attempts, ...wire },
        '*',
      );
    } catch {
      // signaling gone: the run is over for this coordinator anyway
    }
  });
}
